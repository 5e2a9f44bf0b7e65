package stats

import (
	"context"
	"errors"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

const (
	// statsMaxAge is how long a reading answers further requests: metrics-server scrapes
	// every 15 s, and requests that arrive together (the summary and the resource metrics,
	// two metrics-servers) share one reading of the host.
	statsMaxAge = time.Second
	// statsTimeout bounds one reading: metrics-server gives a kubelet 10 s.
	statsTimeout = 10 * time.Second
	// sandboxStatsRetry is how long Satellite reads container stats after ListPodSandboxStats
	// failed, before it asks again (a runtime may be upgraded in place).
	sandboxStatsRetry = 10 * time.Minute
)

// Host is what a Collector needs of the host: one shell command that reads its /proc and df.
type Host interface {
	// Output runs a shell command on the host and returns its standard output.
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// Runtime is what a Collector asks of the host's CRI runtime: the node's pods and their stats.
type Runtime interface {
	ListPodSandbox(ctx context.Context, in *runtimeapi.ListPodSandboxRequest, opts ...grpc.CallOption) (*runtimeapi.ListPodSandboxResponse, error)
	ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, opts ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error)
	ListPodSandboxStats(ctx context.Context, in *runtimeapi.ListPodSandboxStatsRequest, opts ...grpc.CallOption) (*runtimeapi.ListPodSandboxStatsResponse, error)
	ListContainerStats(ctx context.Context, in *runtimeapi.ListContainerStatsRequest, opts ...grpc.CallOption) (*runtimeapi.ListContainerStatsResponse, error)
}

// Config configures a Collector.
type Config struct {
	// NodeName names the node in the summary; the pods read are those labelled with it
	// (kuberuntime.LabelNode).
	NodeName string
	// ContainerdRoot is containerd's root directory on the host: its filesystem is the node's
	// and the containers' (imageFs, containerFs, rootfs).
	ContainerdRoot string
	// HostDown returns why the host is known to be unreachable, nil while it is not: no
	// reading is tried while it is. Nil: the host is always tried.
	HostDown func() error
}

// Collector reads the node's stats when they are asked for: the host's /proc and df in one
// SSH command, and containerd's stats, in parallel. One reading runs at a time; a request
// arriving within statsMaxAge of the last reading gets it.
type Collector struct {
	cfg    Config
	host   Host
	cri    Runtime
	maxAge time.Duration // statsMaxAge
	sem    chan struct{} // held while reading; guards the fields below

	rates       *cpuRates
	last        *statsapi.Summary
	lastErr     error
	lastAt      time.Time
	noSandboxes time.Time // until then, ListPodSandboxStats is not asked
}

// New makes a Collector that reads through host and cri.
func New(cfg Config, host Host, cri Runtime) *Collector {
	if cfg.HostDown == nil {
		cfg.HostDown = func() error { return nil }
	}
	return &Collector{cfg: cfg, host: host, cri: cri, maxAge: statsMaxAge, sem: make(chan struct{}, 1), rates: newCPURates()}
}

// Summary answers the kubelet API's /stats/summary. The summary is shared with other
// requests and must not be modified.
func (c *Collector) Summary(ctx context.Context) (*statsapi.Summary, error) {
	s, err := c.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats of node %s: %w", c.cfg.NodeName, err)
	}
	return s, nil
}

// ResourceMetrics answers the kubelet API's /metrics/resource, which metrics-server reads.
// Like the kubelet, a failed reading is resource_scrape_error 1, not an HTTP error.
func (c *Collector) ResourceMetrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	s, err := c.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l := log.G(ctx).WithError(err)
		var down hostDownError
		if errors.As(err, &down) {
			l.Debug("no resource metrics: host unreachable")
		} else {
			l.Warn("cannot read the node's resource metrics")
		}
		return resourceMetrics(nil), nil
	}
	return resourceMetrics(s), nil
}

// hostDownError is Config.HostDown's answer, which a reading returns without trying.
type hostDownError struct{ err error }

func (e hostDownError) Error() string { return e.err.Error() }
func (e hostDownError) Unwrap() error { return e.err }

func (c *Collector) get(ctx context.Context) (*statsapi.Summary, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	if !c.lastAt.IsZero() && time.Since(c.lastAt) < c.maxAge {
		return c.last, c.lastErr
	}
	sum, err := c.read(ctx)
	if ctx.Err() == nil { // a request that went away does not answer the next ones
		c.last, c.lastErr, c.lastAt = sum, err, time.Now()
	}
	return sum, err
}

// read takes one reading of the host and its pods.
func (c *Collector) read(ctx context.Context) (*statsapi.Summary, error) {
	if err := c.cfg.HostDown(); err != nil {
		return nil, hostDownError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	sel := map[string]string{kuberuntime.LabelNode: c.cfg.NodeName}
	var (
		node nodeSample
		sbs  *runtimeapi.ListPodSandboxResponse
		ctrs *runtimeapi.ListContainersResponse
		cri  criSample
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		out, err := c.host.Output(gctx, nodeStatsCommand(c.cfg.ContainerdRoot))
		if err != nil {
			return fmt.Errorf("read the host's /proc: %w", err)
		}
		node, err = parseNodeSample(out, time.Now())
		return err
	})
	g.Go(func() (err error) {
		sbs, err = c.cri.ListPodSandbox(gctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
		return err
	})
	g.Go(func() (err error) {
		ctrs, err = c.cri.ListContainers(gctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
		return err
	})
	g.Go(func() error { return c.readRuntimeStats(gctx, sel, &cri) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	cri.Sandboxes, cri.Containers = sbs.Items, ctrs.Containers
	return summary(c.cfg.NodeName, node, cri, c.rates), nil
}

// readRuntimeStats asks for the pods' stats (ListPodSandboxStats, pod cgroup figures), and
// for the containers' when the runtime cannot answer that: containerd 1.6 does not implement
// it, and containerd 2.x fails it for a sandbox without a cgroup parent, which Satellite's
// sandboxes have none of. The kubelet falls back on Unimplemented only; it always sets a
// cgroup parent.
func (c *Collector) readRuntimeStats(ctx context.Context, sel map[string]string, sample *criSample) error {
	if time.Now().After(c.noSandboxes) {
		resp, err := c.cri.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: sel}})
		if err == nil {
			sample.SandboxStats = append([]*runtimeapi.PodSandboxStats{}, resp.Stats...)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		log.G(ctx).WithError(err).Debug("reading container stats instead of pod sandbox stats")
		c.noSandboxes = time.Now().Add(sandboxStatsRetry)
	}
	resp, err := c.cri.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{LabelSelector: sel}})
	if err != nil {
		return err
	}
	sample.ContainerStats = resp.Stats
	return nil
}
