package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/satellite-vk/satellite/remote"
)

func TestReadGrown(t *testing.T) {
	t.Parallel()
	data := make([]byte, 2*readChunk+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name   string
		offset int64
		reads  int // ReadAt calls
	}{
		{"small rest in one read", int64(len(data)) - 100, 1},
		{"exactly one chunk", int64(len(data)) - readChunk, 1},
		{"more than a chunk: read ahead", 0, 3},
		{"from the middle", 5, 3},
		{"nothing new", int64(len(data)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, host := openData(t, data)
			var out bytes.Buffer
			var buf []byte
			off := tc.offset
			n, err := readGrown(f, &off, &buf, &out)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(len(data)) - tc.offset; n != want || off != int64(len(data)) {
				t.Fatalf("read %d bytes to offset %d, want %d to %d", n, off, want, len(data))
			}
			if !bytes.Equal(out.Bytes(), data[tc.offset:]) {
				t.Fatal("the bytes written differ from the file's")
			}
			if reads := host.Reads(dataFile); reads != tc.reads {
				t.Errorf("%d reads, want %d", reads, tc.reads)
			}
		})
	}
}

// laterFirst is a file whose first chunk's read ends only after the second chunk's has.
type laterFirst struct {
	remote.File
	second chan struct{}
}

func (l *laterFirst) ReadAt(b []byte, off int64) (int, error) {
	switch off {
	case 0:
		<-l.second
	case readChunk:
		defer close(l.second)
	}
	return l.File.ReadAt(b, off)
}

// Chunks read at once are written out in the file's order, whichever read ends first.
func TestReadAheadInOrder(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*readChunk+777)
	for i := range data {
		data[i] = byte(i * 13 / 7)
	}
	file, _ := openData(t, data)
	f := &laterFirst{File: file, second: make(chan struct{})}
	var out bytes.Buffer
	var buf []byte
	off := int64(0)
	n, err := readGrown(f, &off, &buf, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || off != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read %d bytes to offset %d, want %d: the bytes written differ from the file's", n, off, len(data))
	}
}

// failWriter fails after limit bytes, like a reader that went away.
type failWriter struct{ limit, n int }

func (w *failWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > w.limit {
		return 0, io.ErrClosedPipe
	}
	w.n += len(b)
	return len(b), nil
}

func TestReadAheadStopsWithItsWriter(t *testing.T) {
	f, host := openData(t, make([]byte, 5*readChunk))
	before := runtime.NumGoroutine()
	off := int64(0)
	var buf []byte
	n, err := readGrown(f, &off, &buf, &failWriter{limit: readChunk + 1})
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("error %v, want the writer's", err)
	}
	if n != readChunk || off != readChunk {
		t.Errorf("%d bytes written up to offset %d, want %d: the offset counts what was written", n, off, readChunk)
	}
	// The first readAheadInFlight+1 chunks are read at once, and the write of the first frees a
	// buffer for one more: no read is started after the second chunk's write failed.
	if max, reads := readAheadInFlight+2, host.Reads(dataFile); reads > max {
		t.Errorf("%d reads after the writer failed at the second chunk, want at most %d: reading did not stop", reads, max)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after the read, %d before: the reader was left behind", g, before)
	}
}

// A tail's lines, read while looking for where the tail starts, go out without another read
// of the file: one round trip less for `kubectl logs --tail` of a far away host.
func TestPumpTailReadAlready(t *testing.T) {
	t.Parallel()
	file := []byte(criLogFile)
	for _, follow := range []bool{false, true} {
		f, host := openData(t, file)
		off, tail, err := tailRead(f, int64(len(file)), 2)
		if err != nil || tail == nil {
			t.Fatalf("tailRead: %v, %q", err, tail)
		}
		reads := host.Reads(dataFile)
		var out bytes.Buffer
		m := New(Config{}, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		if follow {
			time.AfterFunc(100*time.Millisecond, cancel)
		}
		err = m.pump(ctx, &out, f, "0.log", logStart{off, tail}, logOptions{}, follow, "c1")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := copyLogs(&want, bytes.NewReader(file[off:]), logOptions{}); err != nil {
			t.Fatal(err)
		}
		if out.String() != want.String() || want.Len() == 0 {
			t.Errorf("follow=%v: %q, want %q", follow, out.String(), want.String())
		}
		if more := host.Reads(dataFile) - reads; !follow && more != 0 {
			t.Errorf("the tail was read again: %d more reads", more)
		}
	}
}
