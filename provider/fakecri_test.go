package provider

import (
	"context"
	"fmt"
	"sync"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeCRI keeps containers in memory: ListContainers and CreateContainer.
type fakeCRI struct {
	Runtime
	mu   sync.Mutex
	ctrs []*runtimeapi.Container
}

func (f *fakeCRI) ListContainers(_ context.Context, r *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range f.ctrs {
		if c.Labels[kuberuntime.LabelNode] == r.GetFilter().GetLabelSelector()[kuberuntime.LabelNode] {
			out = append(out, c)
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (f *fakeCRI) CreateContainer(_ context.Context, r *runtimeapi.CreateContainerRequest, _ ...grpc.CallOption) (*runtimeapi.CreateContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprint(len(f.ctrs))
	f.ctrs = append(f.ctrs, &runtimeapi.Container{Id: id, State: runtimeapi.ContainerState_CONTAINER_CREATED, Labels: r.Config.Labels, Annotations: r.Config.Annotations})
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}
