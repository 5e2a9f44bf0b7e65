package logs

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

// Open reads the CRI log file of container id (containerName of pod podName, as the errors
// name them) on the host and formats it as kubectl asks. With Follow it keeps reading as the
// file grows, carries on in the new file when the Manager rotates it, and ends once the
// container has exited and its last lines are out. Errors carry virtual-kubelet's errdefs
// meaning.
func (m *Manager) Open(ctx context.Context, podName, containerName, id string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	resp, err := m.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
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
	f, err := m.files.Open(ctx, file)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, errdefs.NotFoundf("log file of container %q in pod %q is gone from the host", containerName, podName)
	}
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	start, err := startAt(f, opts.Tail)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("read logs: %w", err)
	}
	follow := opts.Follow && st.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	return m.newStream(ctx, f, file, start, options(opts), follow, st.Id), nil
}

// options are kubectl's options as the formatter applies them.
func options(opts api.ContainerLogOpts) logOptions {
	lo := logOptions{timestamps: opts.Timestamps, limitBytes: int64(opts.LimitBytes)}
	switch {
	case !opts.SinceTime.IsZero():
		lo.since = opts.SinceTime
	case opts.SinceSeconds > 0:
		lo.since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	return lo
}

// logStart is where a log stream starts: an offset in the file, and the bytes from there on
// that were read already (a tail's), if any.
type logStart struct {
	offset int64
	read   []byte
}

// startAt is where the stream of the last tail lines of f starts (all of f when tail is 0).
func startAt(f remote.File, tail int) (logStart, error) {
	if tail <= 0 {
		return logStart{}, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return logStart{}, err
	}
	offset, read, err := tailRead(f, fi.Size(), tail)
	return logStart{offset, read}, err
}

// stream is the reader handed to virtual-kubelet. It owns the goroutine that reads the
// file; Close stops it and waits for it, and the file is closed with it.
type stream struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// newStream starts copying the log. The stream ends with ctx, the request's: a client that
// goes away ends its follower even while the log is idle.
func (m *Manager) newStream(ctx context.Context, f remote.File, file string, start logStart, opts logOptions, follow bool, id string) *stream {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	s := &stream{pr: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		err := m.pump(ctx, pw, f, file, start, opts, follow, id)
		_ = pw.CloseWithError(err)
	}()
	return s
}

func (s *stream) Read(b []byte) (int, error) { return s.pr.Read(b) }

func (s *stream) Close() error {
	s.once.Do(func() {
		s.cancel()
		_ = s.pr.Close()
		<-s.done
	})
	return nil
}

// logReader copies an open log file, from offset on, through its formatter.
type logReader struct {
	f      remote.File
	offset int64
	buf    []byte
	fm     *logFormatter
}

// read copies what the file has grown by. end reports that the stream is over: the byte
// limit reached, the reader gone (no error), or the file unreadable (err).
func (r *logReader) read() (n int64, end bool, err error) {
	n, err = readGrown(r.f, &r.offset, &r.buf, r.fm)
	return n, err != nil, readErr(err)
}

// readErr is err unless it only says that the copy is over.
func readErr(err error) error {
	if err == nil || errors.Is(err, errLimit) || errors.Is(err, io.ErrClosedPipe) {
		return nil
	}
	return fmt.Errorf("read log: %w", err)
}

func (r *logReader) close() {
	if r.f != nil {
		_ = r.f.Close()
	}
}

// pump copies the log to w until it is done: at the end of the file without follow, at the
// byte limit, when the reader goes away, or (following) when the container has exited.
func (m *Manager) pump(ctx context.Context, w io.Writer, f remote.File, file string, start logStart, opts logOptions, follow bool, id string) error {
	r := &logReader{f: f, offset: start.offset, fm: &logFormatter{w: w, opts: opts}}
	defer r.close()
	if len(start.read) > 0 {
		// A tail's lines, read already: out at once, without another round trip.
		if _, err := r.fm.Write(start.read); err != nil || !follow {
			return readErr(err)
		}
		r.offset += int64(len(start.read))
	}
	if !follow {
		_, _, err := r.read()
		return err
	}
	return m.follow(ctx, r, file, id)
}

// follow copies the log as it grows until the container has exited, moving on to the new
// file when the Manager rotates it.
func (m *Manager) follow(ctx context.Context, r *logReader, file, id string) error {
	rotated, stop := m.rotations.subscribe(file)
	defer stop()
	poll := followPollMin
	lastExitCheck := time.Now()
	for {
		n, end, err := r.read()
		if end {
			return err
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
			if end, err := m.reopen(ctx, r, file); end {
				return err
			}
			poll = followPollMin
			continue
		case <-time.After(poll):
		}
		if time.Since(lastExitCheck) >= followExitPoll {
			lastExitCheck = time.Now()
			if m.exited(ctx, id) {
				// The runtime has flushed the container's output by the time it reports the
				// exit; one last read takes the final lines.
				_, _, err := r.read()
				return err
			}
		}
	}
}

// reopen reads what is left of a rotated file, still open, and goes on in the new one.
func (m *Manager) reopen(ctx context.Context, r *logReader, file string) (end bool, err error) {
	if _, end, _ := r.read(); end {
		return true, nil
	}
	r.close()
	f, err := m.files.Open(ctx, file)
	if err != nil {
		r.f = nil
		return true, fmt.Errorf("reopen rotated log: %w", err)
	}
	r.f, r.offset = f, 0
	return false, nil
}

func (m *Manager) exited(ctx context.Context, id string) bool {
	resp, err := m.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if errors.Is(err, remote.ErrNotFound) {
		return true
	}
	return err == nil && resp.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING
}
