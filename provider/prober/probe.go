package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// kind is which of a container's probes: the kubelet's probeType.
type kind int

const (
	readiness kind = iota
	liveness
	startup
)

// String is the name the kubelet's events use ("Liveness probe failed: ...").
func (k kind) String() string {
	switch k {
	case readiness:
		return "Readiness"
	case liveness:
		return "Liveness"
	case startup:
		return "Startup"
	}
	return "UNKNOWN"
}

// spec is the container's probe of this kind, nil when it has none.
func (k kind) spec(c *corev1.Container) *corev1.Probe {
	switch k {
	case readiness:
		return c.ReadinessProbe
	case liveness:
		return c.LivenessProbe
	case startup:
		return c.StartupProbe
	}
	return nil
}

// outcome is what one run of a probe's action found (the kubelet's probe.Result).
type outcome int

const (
	outcomeFailure outcome = iota
	outcomeSuccess
	// outcomeWarning is a success the user is told about (an HTTP redirect not followed).
	outcomeWarning
)

// Runtime runs a command in a container to completion (CRI ExecSync).
type Runtime interface {
	ExecSync(ctx context.Context, in *runtimeapi.ExecSyncRequest, opts ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error)
}

// Dialer opens TCP connections from the remote host, where the pods' network is.
type Dialer interface {
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
}

// execSlack is how long an ExecSync may take beyond the command's own timeout before
// Satellite gives up on the runtime: the kubelet adds its runtime request timeout (2 min).
const execSlack = 2 * time.Minute

// maxProbeOutput is how much of an exec probe's output the kubelet keeps (10 KiB).
const maxProbeOutput = 10 << 10

// runner runs probe actions the kubelet's way (pkg/kubelet/prober/prober.go, runProbe), with
// every connection opened on the remote host: Satellite's pods live in the host's network.
type runner struct {
	cri   Runtime
	host  Dialer
	podIP string
}

// run runs the probe's action once against the container. An error means the probe could not
// be run at all: the kubelet throws such a result away.
func (pr runner) run(ctx context.Context, p *corev1.Probe, c *corev1.Container, containerID string, command []string) (outcome, string, error) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	switch {
	case p.Exec != nil:
		return pr.exec(ctx, containerID, command, timeout)
	case p.HTTPGet != nil:
		req, err := NewHTTPGetRequest(p.HTTPGet, c, pr.podIP, "probe")
		if err != nil {
			return outcomeFailure, "", err
		}
		return httpProbe(NewHTTPClient(pr.host.DialTCP, timeout), req.WithContext(ctx))
	case p.TCPSocket != nil:
		port, err := containerPort(p.TCPSocket.Port, c)
		if err != nil {
			return outcomeFailure, "", err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = pr.podIP
		}
		return pr.tcp(ctx, net.JoinHostPort(host, strconv.Itoa(port)), timeout)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return pr.grpc(ctx, net.JoinHostPort(pr.podIP, strconv.Itoa(int(p.GRPC.Port))), service, timeout)
	}
	return outcomeFailure, "", fmt.Errorf("missing probe handler for container %s", c.Name)
}

// exec runs the command with the probe's timeout (CRI ExecSync's timeout): exit 0 succeeds,
// another exit code fails with the output, and a command that outruns the timeout fails
// (the kubelet's ErrCommandTimedOut; exec probe timeouts are enforced since 1.20).
func (pr runner) exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (outcome, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+execSlack)
	defer cancel()
	resp, err := pr.cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: int64(timeout.Seconds())})
	if errors.Is(err, remote.ErrDeadlineExceeded) {
		return outcomeFailure, fmt.Sprintf("command timed out: %q timed out after %s", strings.Join(cmd, " "), timeout), nil
	}
	if err != nil {
		return outcomeFailure, "", fmt.Errorf("exec in container: %w", err)
	}
	out := append(resp.Stdout, resp.Stderr...)
	if len(out) > maxProbeOutput {
		out = out[:maxProbeOutput]
	}
	if resp.ExitCode != 0 {
		return outcomeFailure, string(out), nil
	}
	return outcomeSuccess, string(out), nil
}

// tcp succeeds when a connection to addr opens within the timeout (pkg/probe/tcp).
func (pr runner) tcp(ctx context.Context, addr string, timeout time.Duration) (outcome, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pr.host.DialTCP(ctx, addr)
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	_ = conn.Close()
	return outcomeSuccess, "", nil
}

// grpc asks the gRPC health service whether service is SERVING (pkg/probe/grpc), without
// TLS, as the kubelet does; every failure is a probe failure.
func (pr runner) grpc(ctx context.Context, addr, service string, timeout time.Duration) (outcome, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithUserAgent("kube-probe/"+kubeVersion),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(pr.host.DialTCP),
	)
	if err != nil {
		return outcomeFailure, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err), nil
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		switch grpcstatus.Code(err) {
		case codes.Unimplemented:
			return outcomeFailure, fmt.Sprintf("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", grpcstatus.Convert(err).Message()), nil
		case codes.DeadlineExceeded:
			return outcomeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
		}
		return outcomeFailure, fmt.Sprintf("error: health rpc probe failed: %+v", err), nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return outcomeFailure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return outcomeSuccess, "service healthy", nil
}
