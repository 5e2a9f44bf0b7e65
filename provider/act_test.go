package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// removeCRI records the containers it removes; those in fail give that error.
type removeCRI struct {
	Runtime
	removed []string
	fail    map[string]error
}

func (f *removeCRI) RemoveContainer(_ context.Context, r *runtimeapi.RemoveContainerRequest, _ ...grpc.CallOption) (*runtimeapi.RemoveContainerResponse, error) {
	if err := f.fail[r.ContainerId]; err != nil {
		return nil, err
	}
	f.removed = append(f.removed, r.ContainerId)
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// Each container keeps its newest dead instance only, as the kubelet's podContainerDeletor
// leaves it: a pod that succeeded after a restart has no lastState.
func TestRemoveDeadInstances(t *testing.T) {
	t.Parallel()
	const (
		running = runtimeapi.ContainerState_CONTAINER_RUNNING
		exited  = runtimeapi.ContainerState_CONTAINER_EXITED
		created = runtimeapi.ContainerState_CONTAINER_CREATED
	)
	tests := []struct {
		name    string
		history []*runtimeapi.ContainerStatus
		fail    map[string]error
		removed string // ids removed
		left    string // ids left in the observation
		acted   bool
	}{
		{name: "one dead instance", history: []*runtimeapi.ContainerStatus{ctr("a", 0, exited, 1)}, removed: "[]", left: "[a-a]"},
		{name: "restarted and running", history: []*runtimeapi.ContainerStatus{ctr("a", 1, running, 0), ctr("a", 0, exited, 1)},
			removed: "[]", left: "[a-b a-a]"},
		{name: "restarted and exited", history: []*runtimeapi.ContainerStatus{ctr("a", 1, exited, 0), ctr("a", 0, exited, 1)},
			removed: "[a-a]", left: "[a-b]", acted: true},
		{name: "created over two dead", history: []*runtimeapi.ContainerStatus{ctr("a", 2, created, 0), ctr("a", 1, exited, 1), ctr("a", 0, exited, 1)},
			removed: "[a-a]", left: "[a-c a-b]", acted: true},
		{name: "already gone", history: []*runtimeapi.ContainerStatus{ctr("a", 1, exited, 0), ctr("a", 0, exited, 1)},
			fail: map[string]error{"a-a": fmt.Errorf("remove: %w", remote.ErrNotFound)}, removed: "[]", left: "[a-b]", acted: true},
		{name: "not removed", history: []*runtimeapi.ContainerStatus{ctr("a", 1, exited, 0), ctr("a", 0, exited, 1)},
			fail: map[string]error{"a-a": errors.New("connection lost")}, removed: "[]", left: "[a-b a-a]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cri := &removeCRI{fail: tt.fail}
			p := &Provider{cri: cri}
			rec := &podRecord{exited: map[string]*runtimeapi.ContainerStatus{}}
			for _, s := range tt.history {
				rec.exited[s.Id] = s
			}
			obs := observation{containers: map[string][]*runtimeapi.ContainerStatus{"a": tt.history}}
			acted := p.removeDeadInstances(context.Background(), rec, &obs)
			var left []string
			for _, s := range obs.containers["a"] {
				left = append(left, s.Id)
				if rec.exited[s.Id] == nil {
					t.Errorf("%s is left but no longer cached", s.Id)
				}
			}
			if got := fmt.Sprint(cri.removed); got != tt.removed || fmt.Sprint(left) != tt.left || acted != tt.acted {
				t.Errorf("removed %s, left %v, acted %v; want %s, %s, %v", got, left, acted, tt.removed, tt.left, tt.acted)
			}
			if len(rec.exited) != len(left) {
				t.Errorf("%d cached statuses for %d instances left", len(rec.exited), len(left))
			}
		})
	}
}
