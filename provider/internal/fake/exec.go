package fake

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamURL is where the fake's streaming server would be: the host's loopback, as
// containerd's is. Host.Streamer gets it.
const streamURL = "http://127.0.0.1:10010/"

// ExecSync runs nothing: in a running container every command exits 0 without output. Hooks.
// ExecSync gives other answers.
func (r *Runtime) ExecSync(ctx context.Context, in *runtimeapi.ExecSyncRequest, _ ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error) {
	arg := in.GetContainerId() + " " + strings.Join(in.GetCmd(), " ")
	return do(ctx, r, "ExecSync", arg, in, r.Hooks.ExecSync, func(in *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		if _, err := r.running("ExecSync", in.GetContainerId()); err != nil {
			return nil, err
		}
		return &runtimeapi.ExecSyncResponse{}, nil
	})
}

// Exec answers a streaming URL for a running container.
func (r *Runtime) Exec(ctx context.Context, in *runtimeapi.ExecRequest, _ ...grpc.CallOption) (*runtimeapi.ExecResponse, error) {
	return do(ctx, r, "Exec", in.GetContainerId(), in, r.Hooks.Exec, func(in *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
		if _, err := r.running("Exec", in.GetContainerId()); err != nil {
			return nil, err
		}
		return &runtimeapi.ExecResponse{Url: streamURL + "exec/" + in.GetContainerId()}, nil
	})
}

// Attach answers a streaming URL for a running container.
func (r *Runtime) Attach(ctx context.Context, in *runtimeapi.AttachRequest, _ ...grpc.CallOption) (*runtimeapi.AttachResponse, error) {
	return do(ctx, r, "Attach", in.GetContainerId(), in, r.Hooks.Attach, func(in *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
		if _, err := r.running("Attach", in.GetContainerId()); err != nil {
			return nil, err
		}
		return &runtimeapi.AttachResponse{Url: streamURL + "attach/" + in.GetContainerId()}, nil
	})
}

// PortForward answers a streaming URL for a sandbox that is there.
func (r *Runtime) PortForward(ctx context.Context, in *runtimeapi.PortForwardRequest, _ ...grpc.CallOption) (*runtimeapi.PortForwardResponse, error) {
	return do(ctx, r, "PortForward", in.GetPodSandboxId(), in, r.Hooks.PortForward, func(in *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
		if r.sandboxes[in.GetPodSandboxId()] == nil {
			return nil, notFoundError("PortForward", "sandbox", in.GetPodSandboxId())
		}
		return &runtimeapi.PortForwardResponse{Url: streamURL + "portforward/" + in.GetPodSandboxId()}, nil
	})
}

// CheckpointContainer is not implemented by the fake (nor used by Satellite).
func (r *Runtime) CheckpointContainer(ctx context.Context, in *runtimeapi.CheckpointContainerRequest, _ ...grpc.CallOption) (*runtimeapi.CheckpointContainerResponse, error) {
	return do(ctx, r, "CheckpointContainer", in.GetContainerId(), in, r.Hooks.CheckpointContainer, func(*runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
		return nil, unimplemented("CheckpointContainer")
	})
}

// UpdatePodSandboxResources is not implemented by the fake (nor used by Satellite).
func (r *Runtime) UpdatePodSandboxResources(ctx context.Context, in *runtimeapi.UpdatePodSandboxResourcesRequest, _ ...grpc.CallOption) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	return do(ctx, r, "UpdatePodSandboxResources", in.GetPodSandboxId(), in, r.Hooks.UpdatePodSandboxResources, func(*runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
		return nil, unimplemented("UpdatePodSandboxResources")
	})
}
