package fake

import (
	"context"
	"maps"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/util/sets"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SetContainerStats gives a container the stats the runtime reports for it (its attributes are
// filled in); without them a container reports its attributes only.
func (r *Runtime) SetContainerStats(id string, s *runtimeapi.ContainerStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats[id] = clone(s)
}

func (r *Runtime) containerStats(c *container) *runtimeapi.ContainerStats {
	s := &runtimeapi.ContainerStats{}
	if set := r.stats[c.status.Id]; set != nil {
		s = clone(set)
	}
	s.Attributes = &runtimeapi.ContainerAttributes{Id: c.status.Id, Metadata: clone(c.status.Metadata),
		Labels: maps.Clone(c.status.Labels), Annotations: maps.Clone(c.status.Annotations)}
	return s
}

// ContainerStats reports a container's stats.
func (r *Runtime) ContainerStats(ctx context.Context, in *runtimeapi.ContainerStatsRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatsResponse, error) {
	return do(ctx, r, "ContainerStats", in.GetContainerId(), in, r.Hooks.ContainerStats, func(in *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
		c := r.containers[in.GetContainerId()]
		if c == nil {
			return nil, notFoundError("ContainerStats", "container", in.GetContainerId())
		}
		return &runtimeapi.ContainerStatsResponse{Stats: r.containerStats(c)}, nil
	})
}

// ListContainerStats reports the stats of the containers that pass the filter.
func (r *Runtime) ListContainerStats(ctx context.Context, in *runtimeapi.ListContainerStatsRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainerStatsResponse, error) {
	return do(ctx, r, "ListContainerStats", in.GetFilter().GetPodSandboxId(), in, r.Hooks.ListContainerStats, func(in *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
		f := in.GetFilter()
		filter := &runtimeapi.ContainerFilter{Id: f.GetId(), PodSandboxId: f.GetPodSandboxId(), LabelSelector: f.GetLabelSelector()}
		var out []*runtimeapi.ContainerStats
		for _, id := range sets.List(sets.KeySet(r.containers)) {
			if c := r.containers[id]; r.passes(c, filter) {
				out = append(out, r.containerStats(c))
			}
		}
		return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
	})
}

func (r *Runtime) sandboxStats(sb *sandbox) *runtimeapi.PodSandboxStats {
	s := sb.status
	stats := &runtimeapi.PodSandboxStats{Attributes: &runtimeapi.PodSandboxAttributes{Id: s.Id, Metadata: clone(s.Metadata),
		Labels: maps.Clone(s.Labels), Annotations: maps.Clone(s.Annotations)}, Linux: &runtimeapi.LinuxPodSandboxStats{}}
	for _, id := range sets.List(sets.KeySet(r.containers)) {
		if c := r.containers[id]; c.sandboxID == s.Id {
			stats.Linux.Containers = append(stats.Linux.Containers, r.containerStats(c))
		}
	}
	return stats
}

// PodSandboxStats reports a sandbox's attributes and its containers' stats.
func (r *Runtime) PodSandboxStats(ctx context.Context, in *runtimeapi.PodSandboxStatsRequest, _ ...grpc.CallOption) (*runtimeapi.PodSandboxStatsResponse, error) {
	return do(ctx, r, "PodSandboxStats", in.GetPodSandboxId(), in, r.Hooks.PodSandboxStats, func(in *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
		sb := r.sandboxes[in.GetPodSandboxId()]
		if sb == nil {
			return nil, notFoundError("PodSandboxStats", "sandbox", in.GetPodSandboxId())
		}
		return &runtimeapi.PodSandboxStatsResponse{Stats: r.sandboxStats(sb)}, nil
	})
}

// ListPodSandboxStats reports the stats of the sandboxes that pass the filter.
func (r *Runtime) ListPodSandboxStats(ctx context.Context, in *runtimeapi.ListPodSandboxStatsRequest, _ ...grpc.CallOption) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return do(ctx, r, "ListPodSandboxStats", in.GetFilter().GetId(), in, r.Hooks.ListPodSandboxStats, func(in *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
		f := in.GetFilter()
		var out []*runtimeapi.PodSandboxStats
		for _, id := range sets.List(sets.KeySet(r.sandboxes)) {
			if sb := r.sandboxes[id]; (f.GetId() == "" || f.GetId() == id) && hasLabels(sb.status.Labels, f.GetLabelSelector()) {
				out = append(out, r.sandboxStats(sb))
			}
		}
		return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
	})
}

// ListMetricDescriptors answers none.
func (r *Runtime) ListMetricDescriptors(ctx context.Context, in *runtimeapi.ListMetricDescriptorsRequest, _ ...grpc.CallOption) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return do(ctx, r, "ListMetricDescriptors", "", in, r.Hooks.ListMetricDescriptors, func(*runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
		return &runtimeapi.ListMetricDescriptorsResponse{}, nil
	})
}

// ListPodSandboxMetrics answers none.
func (r *Runtime) ListPodSandboxMetrics(ctx context.Context, in *runtimeapi.ListPodSandboxMetricsRequest, _ ...grpc.CallOption) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return do(ctx, r, "ListPodSandboxMetrics", "", in, r.Hooks.ListPodSandboxMetrics, func(*runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
		return &runtimeapi.ListPodSandboxMetricsResponse{}, nil
	})
}
