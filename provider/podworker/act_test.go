package podworker

import (
	"context"
	"errors"
	"fmt"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/remote"
)

// removeRuntime is a fake runtime that holds history's containers; removing those in fail
// gives that error. removed returns the ids it removed.
// ctr and testPod build the CRI statuses and pods the tests here start from.
var (
	ctr     = fake.ContainerStatus
	testPod = fake.Pod
)

func removeRuntime(history []*runtimeapi.ContainerStatus, fail map[string]error) (cri *fake.Runtime, removed func() []string) {
	cri = fake.NewRuntime()
	for _, s := range history {
		cri.AddContainer("sb", s)
	}
	cri.Hooks.RemoveContainer = func(_ context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
		if err := fail[r.ContainerId]; err != nil {
			return nil, err
		}
		return nil, fake.Pass
	}
	return cri, func() []string {
		var ids []string
		for _, id := range cri.CallsOf("RemoveContainer") {
			if fail[id] == nil {
				ids = append(ids, id)
			}
		}
		return ids
	}
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
			cri, removed := removeRuntime(tt.history, tt.fail)
			p := &Worker{cri: cri}
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
			if got := fmt.Sprint(removed()); got != tt.removed || fmt.Sprint(left) != tt.left || acted != tt.acted {
				t.Errorf("removed %s, left %v, acted %v; want %s, %s, %v", got, left, acted, tt.removed, tt.left, tt.acted)
			}
			if len(rec.exited) != len(left) {
				t.Errorf("%d cached statuses for %d instances left", len(rec.exited), len(left))
			}
		})
	}
}
