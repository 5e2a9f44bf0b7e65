package fake

import (
	"context"
	"fmt"
	"maps"
	"path"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/util/sets"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// AddContainer puts a container in the runtime as status describes it (its Id included), as
// if made before the test, in a sandbox that need not be there. A nil status adds nothing.
func (r *Runtime) AddContainer(sandboxID string, status *runtimeapi.ContainerStatus) {
	if status == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.containers[status.GetId()] = &container{sandboxID: sandboxID, status: clone(status), config: &runtimeapi.ContainerConfig{}}
}

// Exit ends a running container's process with code, as if it exited by itself.
func (r *Runtime) Exit(id string, code int32, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		return notFoundError("Exit", "container", id)
	}
	r.exit(c, code, reason)
	return nil
}

// exit makes a running container exited; one not running is left as it is.
func (r *Runtime) exit(c *container, code int32, reason string) {
	if c.status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return
	}
	c.status.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.status.FinishedAt = r.now().UnixNano()
	c.status.ExitCode = code
	c.status.Reason = reason
	r.sendContainer(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
}

func (r *Runtime) sendContainer(t runtimeapi.ContainerEventType, c *container) {
	var sb *runtimeapi.PodSandboxStatus
	if s := r.sandboxes[c.sandboxID]; s != nil {
		sb = s.status
	}
	r.events.send(t, c.status.Id, sb, []*runtimeapi.ContainerStatus{c.status})
}

// CreateContainer makes a created container in a sandbox, from an image the runtime has.
func (r *Runtime) CreateContainer(ctx context.Context, in *runtimeapi.CreateContainerRequest, _ ...grpc.CallOption) (*runtimeapi.CreateContainerResponse, error) {
	return do(ctx, r, "CreateContainer", in.GetConfig().GetMetadata().GetName(), in, r.Hooks.CreateContainer, func(in *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
		sb := r.sandboxes[in.GetPodSandboxId()]
		if sb == nil {
			return nil, notFoundError("CreateContainer", "sandbox", in.GetPodSandboxId())
		}
		cfg := in.GetConfig()
		img := r.image(cfg.GetImage().GetImage())
		if img == nil {
			return nil, notFoundError("CreateContainer", "image", cfg.GetImage().GetImage())
		}
		id := r.newID("container")
		c := &container{sandboxID: sb.status.Id, config: cfg, status: &runtimeapi.ContainerStatus{
			Id:          id,
			Metadata:    cfg.GetMetadata(),
			State:       runtimeapi.ContainerState_CONTAINER_CREATED,
			CreatedAt:   r.now().UnixNano(),
			Image:       cfg.GetImage(),
			ImageRef:    img.Id,
			ImageId:     img.Id,
			Labels:      maps.Clone(cfg.GetLabels()),
			Annotations: maps.Clone(cfg.GetAnnotations()),
			Mounts:      cfg.GetMounts(),
			LogPath:     path.Join(sb.config.GetLogDirectory(), cfg.GetLogPath()),
		}}
		r.containers[id] = c
		r.sendContainer(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, c)
		return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
	})
}

// StartContainer runs a created container.
func (r *Runtime) StartContainer(ctx context.Context, in *runtimeapi.StartContainerRequest, _ ...grpc.CallOption) (*runtimeapi.StartContainerResponse, error) {
	return do(ctx, r, "StartContainer", in.GetContainerId(), in, r.Hooks.StartContainer, func(in *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
		c := r.containers[in.GetContainerId()]
		if c == nil {
			return nil, notFoundError("StartContainer", "container", in.GetContainerId())
		}
		if c.status.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			return nil, fmt.Errorf("cri StartContainer: container %q is in state %s, not created", c.status.Id, c.status.State)
		}
		c.status.State = runtimeapi.ContainerState_CONTAINER_RUNNING
		c.status.StartedAt = r.now().UnixNano()
		r.sendContainer(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, c)
		return &runtimeapi.StartContainerResponse{}, nil
	})
}

// StopContainer ends a running container as SIGTERM's default action does (exit 143); one
// already stopped is no error, one that is gone is NotFound (as containerd answers).
func (r *Runtime) StopContainer(ctx context.Context, in *runtimeapi.StopContainerRequest, _ ...grpc.CallOption) (*runtimeapi.StopContainerResponse, error) {
	return do(ctx, r, "StopContainer", in.GetContainerId(), in, r.Hooks.StopContainer, func(in *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
		c := r.containers[in.GetContainerId()]
		if c == nil {
			return nil, notFoundError("StopContainer", "container", in.GetContainerId())
		}
		r.exit(c, 143, "Error")
		return &runtimeapi.StopContainerResponse{}, nil
	})
}

// RemoveContainer removes a container; one that is gone is no error (the CRI's remove is
// idempotent).
func (r *Runtime) RemoveContainer(ctx context.Context, in *runtimeapi.RemoveContainerRequest, _ ...grpc.CallOption) (*runtimeapi.RemoveContainerResponse, error) {
	return do(ctx, r, "RemoveContainer", in.GetContainerId(), in, r.Hooks.RemoveContainer, func(in *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
		c := r.containers[in.GetContainerId()]
		if c == nil {
			return &runtimeapi.RemoveContainerResponse{}, nil
		}
		if c.status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return nil, fmt.Errorf("cri RemoveContainer: container %q is running", c.status.Id)
		}
		delete(r.containers, c.status.Id)
		delete(r.stats, c.status.Id)
		r.sendContainer(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, c)
		return &runtimeapi.RemoveContainerResponse{}, nil
	})
}

// ListContainers lists the containers that pass the filter's id, state, sandbox and labels.
func (r *Runtime) ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	return do(ctx, r, "ListContainers", in.GetFilter().GetPodSandboxId(), in, r.Hooks.ListContainers, func(in *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
		var out []*runtimeapi.Container
		for _, id := range sets.List(sets.KeySet(r.containers)) {
			c := r.containers[id]
			if !r.passes(c, in.GetFilter()) {
				continue
			}
			s := c.status
			out = append(out, &runtimeapi.Container{Id: id, PodSandboxId: c.sandboxID, Metadata: clone(s.Metadata),
				Image: clone(s.Image), ImageRef: s.ImageRef, ImageId: s.ImageId, State: s.State, CreatedAt: s.CreatedAt,
				Labels: maps.Clone(s.Labels), Annotations: maps.Clone(s.Annotations)})
		}
		return &runtimeapi.ListContainersResponse{Containers: out}, nil
	})
}

func (r *Runtime) passes(c *container, f *runtimeapi.ContainerFilter) bool {
	switch {
	case f.GetId() != "" && f.GetId() != c.status.Id:
		return false
	case f.GetPodSandboxId() != "" && f.GetPodSandboxId() != c.sandboxID:
		return false
	case f.GetState() != nil && f.GetState().GetState() != c.status.State:
		return false
	}
	return hasLabels(c.status.Labels, f.GetLabelSelector())
}

// ContainerStatus describes a container.
func (r *Runtime) ContainerStatus(ctx context.Context, in *runtimeapi.ContainerStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error) {
	return do(ctx, r, "ContainerStatus", in.GetContainerId(), in, r.Hooks.ContainerStatus, func(in *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
		c := r.containers[in.GetContainerId()]
		if c == nil {
			return nil, notFoundError("ContainerStatus", "container", in.GetContainerId())
		}
		return &runtimeapi.ContainerStatusResponse{Status: clone(c.status)}, nil
	})
}

// running returns the running container id, or an error saying why it is not.
func (r *Runtime) running(method, id string) (*container, error) {
	c := r.containers[id]
	if c == nil {
		return nil, notFoundError(method, "container", id)
	}
	if c.status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, fmt.Errorf("cri %s: container %q is in state %s, not running", method, id, c.status.State)
	}
	return c, nil
}

// UpdateContainerResources accepts new resources for a container that is there.
func (r *Runtime) UpdateContainerResources(ctx context.Context, in *runtimeapi.UpdateContainerResourcesRequest, _ ...grpc.CallOption) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	return do(ctx, r, "UpdateContainerResources", in.GetContainerId(), in, r.Hooks.UpdateContainerResources, func(in *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
		if r.containers[in.GetContainerId()] == nil {
			return nil, notFoundError("UpdateContainerResources", "container", in.GetContainerId())
		}
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	})
}

// ReopenContainerLog accepts the request for a running container.
func (r *Runtime) ReopenContainerLog(ctx context.Context, in *runtimeapi.ReopenContainerLogRequest, _ ...grpc.CallOption) (*runtimeapi.ReopenContainerLogResponse, error) {
	return do(ctx, r, "ReopenContainerLog", in.GetContainerId(), in, r.Hooks.ReopenContainerLog, func(in *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
		if _, err := r.running("ReopenContainerLog", in.GetContainerId()); err != nil {
			return nil, err
		}
		return &runtimeapi.ReopenContainerLogResponse{}, nil
	})
}
