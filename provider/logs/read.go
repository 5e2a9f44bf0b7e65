package logs

import (
	"errors"
	"io"
	"sync"

	"github.com/satellite-vk/satellite/remote"
)

// readChunk is the most of a log asked for at once: over SFTP that is many requests in flight
// (pkg/sftp splits it into 32 KiB reads, up to 64 at a time), so a far away host still streams
// quickly; the buffer is only as large as what there is to read.
const readChunk = 4 << 20

// readGrown reads the file from *offset up to the size it has now, into w. Reading only below
// the size just observed never meets a short read of a file that is still being written, so
// no byte is skipped or read twice. More than one chunk is read ahead: the next chunk's
// requests are in flight while the last one is written out, so a far away host's round trips
// overlap the writing instead of adding to it.
func readGrown(f remote.File, offset *int64, buf *[]byte, w io.Writer) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	if end-*offset > readChunk {
		return readAhead(f, offset, end, w)
	}
	if want := end - *offset; int64(len(*buf)) < want {
		*buf = make([]byte, want)
	}
	var total int64
	for *offset < end {
		n, err := f.ReadAt((*buf)[:min(int64(len(*buf)), end-*offset)], *offset)
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return total, werr
			}
			*offset += int64(n)
			total += int64(n)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return total, err
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

// readAheadInFlight is how many chunks are read at once. pkg/sftp keeps up to 64 requests of
// one ReadAt in flight, but it waits for all of them before the call returns, so one ReadAt at a
// time drains the SSH channel at each chunk's end: with two, the next chunk's requests fill the
// window while the last replies of the one before come in. At 50 ms of round trip that is the
// difference between about 24 and 40 MiB/s (the channel's 2 MiB window a round trip).
const readAheadInFlight = 2

// piece is one chunk's read.
type piece struct {
	b   []byte
	n   int
	err error
}

// readsAhead are the chunk reads under way: a buffer more than readAheadInFlight lets one
// chunk be written while the next are read.
type readsAhead struct {
	f     remote.File
	free  chan []byte
	order chan chan piece // the chunks' results, in file order
	stop  chan struct{}
	reads sync.WaitGroup
}

func newReadsAhead(f remote.File) *readsAhead {
	a := &readsAhead{
		f:     f,
		free:  make(chan []byte, readAheadInFlight+1),
		order: make(chan chan piece, readAheadInFlight+1),
		stop:  make(chan struct{}),
	}
	for i := 0; i < readAheadInFlight+1; i++ {
		a.free <- make([]byte, readChunk)
	}
	return a
}

// start starts each chunk's read of [from, end) as a buffer comes free, until stopped.
func (a *readsAhead) start(from, end int64) {
	defer a.reads.Done()
	defer close(a.order)
	for off := from; off < end; {
		var b []byte
		select {
		case b = <-a.free:
		case <-a.stop:
			return
		}
		b = b[:min(int64(len(b)), end-off)]
		res := make(chan piece, 1)
		a.reads.Add(1)
		go func(b []byte, off int64) {
			defer a.reads.Done()
			n, err := a.f.ReadAt(b, off)
			res <- piece{b, n, err}
		}(b, off)
		off += int64(len(b))
		select {
		case a.order <- res:
		case <-a.stop:
			return
		}
	}
}

// readAhead reads [*offset, end) in chunks, readAheadInFlight of them at a time, and writes
// them out in order. It returns once every read it started is over.
func readAhead(f remote.File, offset *int64, end int64, w io.Writer) (int64, error) {
	a := newReadsAhead(f)
	a.reads.Add(1)
	go a.start(*offset, end)
	defer func() {
		close(a.stop)
		a.reads.Wait() // no read outlives the call: the file is closed after it
	}()
	var total int64
	for res := range a.order {
		p := <-res
		if p.n > 0 {
			if _, err := w.Write(p.b[:p.n]); err != nil {
				return total, err
			}
			*offset += int64(p.n)
			total += int64(p.n)
		}
		if p.err != nil && !errors.Is(p.err, io.EOF) {
			return total, p.err
		}
		if p.n < len(p.b) {
			// The file ended before the size it had: what follows is not there to read.
			return total, nil
		}
		a.free <- p.b[:cap(p.b)]
	}
	return total, nil
}
