package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// Follow polls the log file, quickly while it grows and backing off to once a second while it
// is idle; it checks whether the container still runs once a second.
const (
	followPollMin  = 50 * time.Millisecond
	followPollMax  = time.Second
	followExitPoll = time.Second
)

// GetContainerLogs reads a container's CRI log file on the host over SFTP and formats it as
// kubectl asks. With Follow it keeps reading as the file grows, carries on in the new file
// when Satellite rotates it, and ends once the container has exited and its last lines are
// out.
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	pod := p.store.get(namespace, podName)
	if pod == nil {
		return nil, errdefs.NotFoundf("pod %q does not exist", podName)
	}
	id, err := logContainerID(podName, &pod.Status, containerName, opts.Previous)
	if err != nil {
		return nil, errdefs.AsInvalidInput(err)
	}
	if err := p.hostDown(); err != nil {
		return nil, err
	}
	resp, err := p.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if errors.Is(err, remote.ErrNotFound) {
		return nil, errdefs.InvalidInputf("container %q in pod %q is no longer on the host", containerName, podName)
	}
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	st := resp.Status
	file := st.LogPath
	if !path.IsAbs(file) {
		return nil, fmt.Errorf("container %q has no log file on the host", containerName)
	}
	f, err := p.host.Open(ctx, file)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, errdefs.NotFoundf("log file of container %q in pod %q is gone from the host", containerName, podName)
	}
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	offset := int64(0)
	var tail []byte
	if opts.Tail > 0 {
		fi, err := f.Stat()
		if err == nil {
			offset, tail, err = tailRead(f, fi.Size(), opts.Tail)
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("read logs: %w", err)
		}
	}
	lo := logOptions{timestamps: opts.Timestamps, limitBytes: int64(opts.LimitBytes)}
	switch {
	case !opts.SinceTime.IsZero():
		lo.since = opts.SinceTime
	case opts.SinceSeconds > 0:
		lo.since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	follow := opts.Follow && st.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	return p.newLogStream(ctx, f, file, logStart{offset, tail}, lo, follow, st.Id), nil
}

// logStream is the reader handed to virtual-kubelet. It owns the goroutine that reads the
// file; Close stops it and waits for it, and the file is closed with it.
type logStream struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// The stream ends with ctx, the request's: a client that goes away ends its follower even
// while the log is idle.
// logStart is where a log stream starts: an offset in the file, and the bytes from there on
// that were read already (a tail's), if any.
type logStart struct {
	offset int64
	read   []byte
}

func (p *Provider) newLogStream(ctx context.Context, f remote.File, file string, start logStart, opts logOptions, follow bool, id string) *logStream {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	s := &logStream{pr: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		err := p.pump(ctx, pw, f, file, start, opts, follow, id)
		_ = pw.CloseWithError(err)
	}()
	return s
}

func (s *logStream) Read(b []byte) (int, error) { return s.pr.Read(b) }

func (s *logStream) Close() error {
	s.once.Do(func() {
		s.cancel()
		_ = s.pr.Close()
		<-s.done
	})
	return nil
}

// pump copies the log to w until it is done: at the end of the file without follow, at the
// byte limit, when the reader goes away, or (following) when the container has exited.
func (p *Provider) pump(ctx context.Context, w io.Writer, f remote.File, file string, start logStart, opts logOptions, follow bool, id string) (err error) {
	defer func() { _ = f.Close() }()
	fm := &logFormatter{w: w, opts: opts}
	offset := start.offset
	if len(start.read) > 0 {
		// A tail's lines, read already: out at once, without another round trip.
		_, err := fm.Write(start.read)
		if errors.Is(err, errLimit) || errors.Is(err, io.ErrClosedPipe) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		offset += int64(len(start.read))
		if !follow {
			return nil
		}
	}
	var buf []byte
	var rotated <-chan struct{}
	if follow {
		var stop func()
		rotated, stop = p.rotations.subscribe(file)
		defer stop()
	}
	poll := followPollMin
	lastExitCheck := time.Now()
	for {
		n, err := readGrown(f, &offset, &buf, fm)
		if errors.Is(err, errLimit) || errors.Is(err, io.ErrClosedPipe) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		if !follow {
			return nil
		}
		if n > 0 {
			poll = followPollMin
		} else {
			poll = min(2*poll, followPollMax)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-rotated:
			// The old file is still open: read what is left of it, then go on in the new one.
			if _, err := readGrown(f, &offset, &buf, fm); err != nil {
				return nil
			}
			_ = f.Close()
			if f, err = p.host.Open(ctx, file); err != nil {
				return fmt.Errorf("reopen rotated log: %w", err)
			}
			offset = 0
			poll = followPollMin
			continue
		case <-time.After(poll):
		}
		if time.Since(lastExitCheck) >= followExitPoll {
			lastExitCheck = time.Now()
			if p.exited(ctx, id) {
				// The runtime has flushed the container's output by the time it reports the
				// exit; one last read takes the final lines.
				_, err := readGrown(f, &offset, &buf, fm)
				if err != nil && !errors.Is(err, errLimit) && !errors.Is(err, io.ErrClosedPipe) {
					return fmt.Errorf("read log: %w", err)
				}
				return nil
			}
		}
	}
}

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

// readAhead reads [*offset, end) in chunks, readAheadInFlight of them at a time, and writes
// them out in order; a buffer more than that lets one chunk be written while the next are read.
// It returns once every read it started is over.
func readAhead(f remote.File, offset *int64, end int64, w io.Writer) (int64, error) {
	type piece struct {
		b   []byte
		n   int
		err error
	}
	free := make(chan []byte, readAheadInFlight+1)
	for i := 0; i < readAheadInFlight+1; i++ {
		free <- make([]byte, readChunk)
	}
	order := make(chan chan piece, readAheadInFlight+1) // the chunks' results, in file order
	stop := make(chan struct{})
	var reads sync.WaitGroup
	start := *offset
	reads.Add(1)
	go func() { // starts each chunk's read as a buffer comes free
		defer reads.Done()
		defer close(order)
		for off := start; off < end; {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			b = b[:min(int64(len(b)), end-off)]
			res := make(chan piece, 1)
			reads.Add(1)
			go func(b []byte, off int64) {
				defer reads.Done()
				n, err := f.ReadAt(b, off)
				res <- piece{b, n, err}
			}(b, off)
			off += int64(len(b))
			select {
			case order <- res:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		reads.Wait() // no read outlives the call: the file is closed after it
	}()
	var total int64
	for res := range order {
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
		free <- p.b[:cap(p.b)]
	}
	return total, nil
}

func (p *Provider) exited(ctx context.Context, id string) bool {
	resp, err := p.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if errors.Is(err, remote.ErrNotFound) {
		return true
	}
	return err == nil && resp.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING
}

// rotations tells followers of a log file that Satellite has just rotated it.
type rotations struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newRotations() *rotations { return &rotations{subs: map[string]map[chan struct{}]struct{}{}} }

func (r *rotations) subscribe(file string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	r.mu.Lock()
	if r.subs[file] == nil {
		r.subs[file] = map[chan struct{}]struct{}{}
	}
	r.subs[file][c] = struct{}{}
	r.mu.Unlock()
	return c, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs[file], c)
		if len(r.subs[file]) == 0 {
			delete(r.subs, file)
		}
	}
}

func (r *rotations) rotated(file string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.subs[file] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
