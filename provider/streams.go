package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/status"
	"github.com/satellite-vk/satellite/remote"
)

// latestContainer is the newest instance of the pod's container on the host, as the runtime
// lists it (id, state, metadata): one round trip.
func (p *Provider) latestContainer(ctx context.Context, namespace, podName, container string) (*runtimeapi.ContainerStatus, error) {
	pod := p.pods.Get(namespace, podName)
	if pod == nil {
		return nil, errdefs.NotFoundf("pod %q not found on node %s", namespace+"/"+podName, p.cfg.NodeName)
	}
	sel := map[string]string{kuberuntime.LabelPodUID: string(pod.UID), kuberuntime.LabelNode: p.cfg.NodeName, kuberuntime.LabelContainerName: container}
	list, err := p.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s/%s: %w", namespace, podName, err)
	}
	var history []*runtimeapi.ContainerStatus
	for _, c := range list.Containers {
		history = append(history, &runtimeapi.ContainerStatus{Id: c.Id, Metadata: c.Metadata, State: c.State, CreatedAt: c.CreatedAt})
	}
	status.SortHistory(history)
	if len(history) == 0 {
		return nil, errdefs.NotFoundf("container %q in pod %q not found", container, podName)
	}
	return history[0], nil
}

// checkedContainer is a container Precheck found running, handed to the exec or attach
// handler of the same request in its context, so that it is not looked up twice.
type checkedContainer struct{ namespace, pod, container, id string }

type checkedContainerKey struct{}

func withCheckedContainer(ctx context.Context, c checkedContainer) context.Context {
	return context.WithValue(ctx, checkedContainerKey{}, c)
}

// runningContainer is the id of the container's running instance.
func (p *Provider) runningContainer(ctx context.Context, namespace, podName, container string) (string, error) {
	if c, ok := ctx.Value(checkedContainerKey{}).(checkedContainer); ok && c.namespace == namespace && c.pod == podName && c.container == container {
		return c.id, nil
	}
	if err := p.hostDown(); err != nil {
		return "", err
	}
	st, err := p.latestContainer(ctx, namespace, podName, container)
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
	pre := p.streams.PredialStream(ctx)
	resp, err := p.cri.Exec(ctx, &runtimeapi.ExecRequest{
		ContainerId: id, Cmd: cmd, Tty: attach.TTY(),
		Stdin: attach.Stdin() != nil, Stdout: attach.Stdout() != nil, Stderr: attach.Stderr() != nil,
	})
	if err != nil {
		pre.Close()
		return fmt.Errorf("exec in %s/%s/%s: %w", namespace, podName, containerName, err)
	}
	return p.stream(ctx, resp.Url, attach, pre)
}

// AttachToContainer attaches to a running container's main process through CRI Attach.
func (p *Provider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	id, err := p.runningContainer(ctx, namespace, podName, containerName)
	if err != nil {
		return err
	}
	pre := p.streams.PredialStream(ctx)
	resp, err := p.cri.Attach(ctx, &runtimeapi.AttachRequest{
		ContainerId: id, Tty: attach.TTY(),
		Stdin: attach.Stdin() != nil, Stdout: attach.Stdout() != nil, Stderr: attach.Stderr() != nil,
	})
	if err != nil {
		pre.Close()
		return fmt.Errorf("attach to %s/%s/%s: %w", namespace, podName, containerName, err)
	}
	return p.stream(ctx, resp.Url, attach, pre)
}

// stream relays a session at url; pre (which may be nil) is the connection PredialStream
// started for it, and is closed unless used.
func (p *Provider) stream(ctx context.Context, url string, attach api.AttachIO, pre *remote.Predialed) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := remote.StreamOptions{Stdin: attach.Stdin(), TTY: attach.TTY(), Predialed: pre}
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
	err := p.streams.Stream(ctx, url, opts)
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
	if p.pods.Get(namespace, podName) == nil {
		return errdefs.NotFoundf("pod %q not found on node %s", namespace+"/"+podName, p.cfg.NodeName)
	}
	if err := p.hostDown(); err != nil {
		return err
	}
	conn, err := p.streams.DialTCP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
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
