package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/sync/errgroup"
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

// statsCollector reads the node's stats when they are asked for: the host's /proc and df in
// one SSH command, and containerd's stats, in parallel. One reading runs at a time; a request
// arriving within statsMaxAge of the last reading gets it.
type statsCollector struct {
	p      *Provider
	maxAge time.Duration // statsMaxAge
	sem    chan struct{} // held while reading; guards the fields below

	rates       *cpuRates
	last        *statsapi.Summary
	lastErr     error
	lastAt      time.Time
	noSandboxes time.Time // until then, ListPodSandboxStats is not asked
}

func newStatsCollector(p *Provider) *statsCollector {
	return &statsCollector{p: p, maxAge: statsMaxAge, sem: make(chan struct{}, 1), rates: newCPURates()}
}

// GetStatsSummary answers the kubelet API's /stats/summary. The summary is shared with other
// requests and must not be modified.
func (p *Provider) GetStatsSummary(ctx context.Context) (*statsapi.Summary, error) {
	s, err := p.stats.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats of node %s: %w", p.cfg.NodeName, err)
	}
	return s, nil
}

// GetMetricsResource answers the kubelet API's /metrics/resource, which metrics-server reads.
// Like the kubelet, a failed reading is resource_scrape_error 1, not an HTTP error.
func (p *Provider) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	s, err := p.stats.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l := log.G(ctx).WithError(err)
		if errors.Is(err, ErrHostUnreachable) {
			l.Debug("no resource metrics: host unreachable")
		} else {
			l.Warn("cannot read the node's resource metrics")
		}
		return resourceMetrics(nil), nil
	}
	return resourceMetrics(s), nil
}

func (s *statsCollector) get(ctx context.Context) (*statsapi.Summary, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if !s.lastAt.IsZero() && time.Since(s.lastAt) < s.maxAge {
		return s.last, s.lastErr
	}
	sum, err := s.read(ctx)
	if ctx.Err() == nil { // a request that went away does not answer the next ones
		s.last, s.lastErr, s.lastAt = sum, err, time.Now()
	}
	return sum, err
}

// read takes one reading of the host and its pods.
func (s *statsCollector) read(ctx context.Context) (*statsapi.Summary, error) {
	p := s.p
	if err := p.hostDown(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	sel := map[string]string{kuberuntime.LabelNode: p.cfg.NodeName}
	var (
		node nodeSample
		sbs  *runtimeapi.ListPodSandboxResponse
		ctrs *runtimeapi.ListContainersResponse
		cri  criSample
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		out, err := p.host.Output(gctx, nodeStatsCommand(p.cfg.ContainerdRoot))
		if err != nil {
			return fmt.Errorf("read the host's /proc: %w", err)
		}
		node, err = parseNodeSample(out, time.Now())
		return err
	})
	g.Go(func() (err error) {
		sbs, err = p.cri.ListPodSandbox(gctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
		return err
	})
	g.Go(func() (err error) {
		ctrs, err = p.cri.ListContainers(gctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
		return err
	})
	g.Go(func() error { return s.readRuntimeStats(gctx, sel, &cri) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	cri.Sandboxes, cri.Containers = sbs.Items, ctrs.Containers
	return summary(p.cfg.NodeName, node, cri, s.rates), nil
}

// readRuntimeStats asks for the pods' stats (ListPodSandboxStats, pod cgroup figures), and
// for the containers' when the runtime cannot answer that: containerd 1.6 does not implement
// it, and containerd 2.x fails it for a sandbox without a cgroup parent, which Satellite's
// sandboxes have none of. The kubelet falls back on Unimplemented only; it always sets a
// cgroup parent.
func (s *statsCollector) readRuntimeStats(ctx context.Context, sel map[string]string, c *criSample) error {
	if time.Now().After(s.noSandboxes) {
		resp, err := s.p.cri.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: sel}})
		if err == nil {
			c.SandboxStats = append([]*runtimeapi.PodSandboxStats{}, resp.Stats...)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		log.G(ctx).WithError(err).Debug("reading container stats instead of pod sandbox stats")
		s.noSandboxes = time.Now().Add(sandboxStatsRetry)
	}
	resp, err := s.p.cri.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{LabelSelector: sel}})
	if err != nil {
		return err
	}
	c.ContainerStats = resp.Stats
	return nil
}
