package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	utilexec "k8s.io/utils/exec"

	"github.com/satellite-vk/satellite/remote"
)

// findContainer returns the CRI status of the pod's container: the current instance, or with
// previous the one before it (what `kubectl logs --previous` reads).
func (p *Provider) findContainer(ctx context.Context, namespace, podName, container string, previous bool) (*runtimeapi.ContainerStatus, error) {
	pod := p.store.get(namespace, podName)
	if pod == nil {
		return nil, errdefs.NotFoundf("pod %q not found on node %s", namespace+"/"+podName, p.cfg.NodeName)
	}
	sel := map[string]string{labelPodUID: string(pod.UID), labelNode: p.cfg.NodeName, labelContainerName: container}
	list, err := p.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s/%s: %w", namespace, podName, err)
	}
	var history []*runtimeapi.ContainerStatus
	for _, c := range list.Containers {
		history = append(history, &runtimeapi.ContainerStatus{Id: c.Id, Metadata: c.Metadata, State: c.State, CreatedAt: c.CreatedAt})
	}
	sortHistory(history)
	i := 0
	if previous {
		i = 1
	}
	if len(history) <= i {
		what := "container"
		if previous {
			what = "previous terminated container"
		}
		return nil, errdefs.NotFoundf("%s %q in pod %q not found", what, container, podName)
	}
	resp, err := p.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: history[i].Id})
	if errors.Is(err, remote.ErrNotFound) {
		return nil, errdefs.AsNotFound(err)
	}
	if err != nil {
		return nil, err
	}
	return resp.Status, nil
}

// GetContainerLogs streams a container's CRI log file from the host, applying kubectl's
// options. With Follow it follows the file by name (so across rotation) and ends once the
// container has exited and its last lines have been read.
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	st, err := p.findContainer(ctx, namespace, podName, containerName, opts.Previous)
	if err != nil {
		return nil, err
	}
	file := st.LogPath
	if !path.IsAbs(file) {
		return nil, fmt.Errorf("container %q has no log file on the host", containerName)
	}
	cmd := "tail -n +1"
	if opts.Tail > 0 {
		cmd = "tail -n " + strconv.Itoa(opts.Tail)
	}
	follow := opts.Follow && st.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	if follow {
		cmd += " -F"
	}
	out, err := p.host.Start(ctx, cmd+" -- "+remote.Quote(file)+" 2>/dev/null")
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	lo := logOptions{timestamps: opts.Timestamps, limitBytes: int64(opts.LimitBytes)}
	switch {
	case !opts.SinceTime.IsZero():
		lo.since = opts.SinceTime
	case opts.SinceSeconds > 0:
		lo.since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	return p.newLogStream(out, lo, follow, st.Id), nil
}

// logStream is the reader handed to virtual-kubelet. It owns two goroutines: the copier, and
// with follow a watcher that ends the stream when the container exits. Close stops both.
type logStream struct {
	pr     *io.PipeReader
	src    io.Closer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (p *Provider) newLogStream(src io.ReadCloser, opts logOptions, follow bool, id string) *logStream {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &logStream{pr: pr, src: src, cancel: cancel}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := copyLogs(pw, src, opts)
		_ = src.Close()
		_ = pw.CloseWithError(err)
	}()
	if follow {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.waitExited(ctx, id)
			_ = src.Close()
		}()
	}
	return s
}

func (s *logStream) Read(b []byte) (int, error) { return s.pr.Read(b) }

func (s *logStream) Close() error {
	s.cancel()
	_ = s.src.Close()
	_ = s.pr.Close()
	s.wg.Wait()
	return nil
}

// waitExited returns once the container is no longer running (and a second more, for the
// follower to read its last lines), or when ctx ends.
func (p *Provider) waitExited(ctx context.Context, id string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		resp, err := p.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if errors.Is(err, remote.ErrNotFound) || err == nil && resp.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			return
		}
	}
}

// runningContainer is the id of the container's running instance.
func (p *Provider) runningContainer(ctx context.Context, namespace, podName, container string) (string, error) {
	st, err := p.findContainer(ctx, namespace, podName, container, false)
	if err != nil {
		return "", err
	}
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return "", errdefs.InvalidInputf("container %q in pod %q is not running", container, podName)
	}
	return st.Id, nil
}

// RunInContainer runs a command in a running container through CRI Exec, relaying its streams
// over the SSH connection. A non-zero exit reaches kubectl as the command's exit code.
func (p *Provider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	id, err := p.runningContainer(ctx, namespace, podName, containerName)
	if err != nil {
		return err
	}
	resp, err := p.cri.Exec(ctx, &runtimeapi.ExecRequest{
		ContainerId: id, Cmd: cmd, Tty: attach.TTY(),
		Stdin: attach.Stdin() != nil, Stdout: attach.Stdout() != nil, Stderr: attach.Stderr() != nil,
	})
	if err != nil {
		return fmt.Errorf("exec in %s/%s/%s: %w", namespace, podName, containerName, err)
	}
	return p.stream(ctx, resp.Url, attach)
}

// AttachToContainer attaches to a running container's main process through CRI Attach.
func (p *Provider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	id, err := p.runningContainer(ctx, namespace, podName, containerName)
	if err != nil {
		return err
	}
	resp, err := p.cri.Attach(ctx, &runtimeapi.AttachRequest{
		ContainerId: id, Tty: attach.TTY(),
		Stdin: attach.Stdin() != nil, Stdout: attach.Stdout() != nil, Stderr: attach.Stderr() != nil,
	})
	if err != nil {
		return fmt.Errorf("attach to %s/%s/%s: %w", namespace, podName, containerName, err)
	}
	return p.stream(ctx, resp.Url, attach)
}

func (p *Provider) stream(ctx context.Context, url string, attach api.AttachIO) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := remote.StreamOptions{Stdin: attach.Stdin(), TTY: attach.TTY()}
	if w := attach.Stdout(); w != nil {
		opts.Stdout = w
	}
	if w := attach.Stderr(); w != nil {
		opts.Stderr = w
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if attach.TTY() && attach.Resize() != nil {
		sizes := make(chan remote.TermSize)
		opts.Resize = sizes
		wg.Add(1)
		go func() {
			defer wg.Done()
			relaySizes(ctx, attach.Resize(), sizes)
		}()
	}
	err := p.host.Stream(ctx, url, opts)
	var exit *remote.ExitError
	if errors.As(err, &exit) {
		// virtual-kubelet looks for k8s.io/utils/exec.ExitError by type, not through wrapping.
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with non-zero exit code: %w", err), Code: exit.Code}
	}
	return err
}

func relaySizes(ctx context.Context, in <-chan api.TermSize, out chan<- remote.TermSize) {
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-in:
			if !ok {
				return
			}
			select {
			case out <- remote.TermSize{Width: s.Width, Height: s.Height}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// PortForward connects the stream to the port on the host's loopback, through the SSH
// connection: Satellite's pods share the host's network, so the pod's port is the host's.
func (p *Provider) PortForward(ctx context.Context, namespace, podName string, port int32, stream io.ReadWriteCloser) error {
	if p.store.get(namespace, podName) == nil {
		return errdefs.NotFoundf("pod %q not found on node %s", namespace+"/"+podName, p.cfg.NodeName)
	}
	conn, err := p.host.DialTCP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("port-forward to port %d of pod %s/%s: %w", port, namespace, podName, err)
	}
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(conn, stream)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	_, err = io.Copy(stream, conn)
	_ = stream.Close()
	_ = conn.Close()
	<-done
	return err
}

var errNoStats = errors.New("stats are not served by this version of Satellite")

// GetStatsSummary is not served yet; the error says so.
func (p *Provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return nil, errNoStats
}

// GetMetricsResource is not served yet; the error says so.
func (p *Provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, errNoStats
}
