package fake

import (
	"context"
	"maps"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/sets"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// AddSandbox puts a ready sandbox in the runtime, as if made before the test, and returns its
// id.
func (r *Runtime) AddSandbox(config *runtimeapi.PodSandboxConfig) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runSandbox(config, "")
}

func (r *Runtime) runSandbox(config *runtimeapi.PodSandboxConfig, handler string) string {
	id := r.newID("sandbox")
	r.sandboxes[id] = &sandbox{config: config, status: &runtimeapi.PodSandboxStatus{
		Id:             id,
		Metadata:       config.GetMetadata(),
		State:          runtimeapi.PodSandboxState_SANDBOX_READY,
		CreatedAt:      r.now().UnixNano(),
		Labels:         maps.Clone(config.GetLabels()),
		Annotations:    maps.Clone(config.GetAnnotations()),
		RuntimeHandler: handler,
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
	}}
	r.events.send(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, id, r.sandboxes[id].status, nil)
	return id
}

// RunPodSandbox makes a ready sandbox.
func (r *Runtime) RunPodSandbox(ctx context.Context, in *runtimeapi.RunPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.RunPodSandboxResponse, error) {
	return do(ctx, r, "RunPodSandbox", in.GetConfig().GetMetadata().GetName(), in, r.Hooks.RunPodSandbox, func(in *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
		return &runtimeapi.RunPodSandboxResponse{PodSandboxId: r.runSandbox(in.GetConfig(), in.GetRuntimeHandler())}, nil
	})
}

// StopPodSandbox makes a sandbox not ready and its running containers exited (137, as when
// killed). A sandbox that is gone is no error: the CRI's stop is idempotent.
func (r *Runtime) StopPodSandbox(ctx context.Context, in *runtimeapi.StopPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.StopPodSandboxResponse, error) {
	return do(ctx, r, "StopPodSandbox", in.GetPodSandboxId(), in, r.Hooks.StopPodSandbox, func(in *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
		sb := r.sandboxes[in.GetPodSandboxId()]
		if sb == nil {
			return &runtimeapi.StopPodSandboxResponse{}, nil
		}
		for _, c := range r.containers {
			if c.sandboxID == sb.status.Id {
				r.exit(c, 137, "Error")
			}
		}
		sb.status.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		return &runtimeapi.StopPodSandboxResponse{}, nil
	})
}

// RemovePodSandbox removes a sandbox and its containers; one that is gone is no error.
func (r *Runtime) RemovePodSandbox(ctx context.Context, in *runtimeapi.RemovePodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.RemovePodSandboxResponse, error) {
	return do(ctx, r, "RemovePodSandbox", in.GetPodSandboxId(), in, r.Hooks.RemovePodSandbox, func(in *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
		sb := r.sandboxes[in.GetPodSandboxId()]
		if sb == nil {
			return &runtimeapi.RemovePodSandboxResponse{}, nil
		}
		for id, c := range r.containers {
			if c.sandboxID == sb.status.Id {
				delete(r.containers, id)
			}
		}
		delete(r.sandboxes, sb.status.Id)
		r.events.send(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, sb.status.Id, sb.status, nil)
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	})
}

// PodSandboxStatus describes a sandbox.
func (r *Runtime) PodSandboxStatus(ctx context.Context, in *runtimeapi.PodSandboxStatusRequest, _ ...grpc.CallOption) (*runtimeapi.PodSandboxStatusResponse, error) {
	return do(ctx, r, "PodSandboxStatus", in.GetPodSandboxId(), in, r.Hooks.PodSandboxStatus, func(in *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
		sb := r.sandboxes[in.GetPodSandboxId()]
		if sb == nil {
			return nil, notFoundError("PodSandboxStatus", "sandbox", in.GetPodSandboxId())
		}
		return &runtimeapi.PodSandboxStatusResponse{Status: clone(sb.status)}, nil
	})
}

// ListPodSandbox lists the sandboxes that pass the filter's id, state and labels.
func (r *Runtime) ListPodSandbox(ctx context.Context, in *runtimeapi.ListPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.ListPodSandboxResponse, error) {
	return do(ctx, r, "ListPodSandbox", "", in, r.Hooks.ListPodSandbox, func(in *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
		f := in.GetFilter()
		var out []*runtimeapi.PodSandbox
		for _, id := range sets.List(sets.KeySet(r.sandboxes)) {
			s := r.sandboxes[id].status
			if f.GetId() != "" && f.GetId() != id || f.GetState() != nil && f.GetState().GetState() != s.State || !hasLabels(s.Labels, f.GetLabelSelector()) {
				continue
			}
			out = append(out, &runtimeapi.PodSandbox{Id: id, Metadata: clone(s.Metadata), State: s.State, CreatedAt: s.CreatedAt,
				Labels: maps.Clone(s.Labels), Annotations: maps.Clone(s.Annotations), RuntimeHandler: s.RuntimeHandler})
		}
		return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
	})
}

func hasLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// clone deep-copies a message, so no caller shares the fake's state.
func clone[M proto.Message](m M) M {
	return proto.Clone(m).(M)
}
