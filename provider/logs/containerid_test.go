package logs

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLogContainerID(t *testing.T) {
	t.Parallel()
	term := func(id string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ContainerID: id, ExitCode: 1}
	}
	st := &corev1.PodStatus{
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "run", ContainerID: "containerd://r2", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				LastTerminationState: corev1.ContainerState{Terminated: term("containerd://r1")}},
			{Name: "done", ContainerID: "containerd://d1", State: corev1.ContainerState{Terminated: term("containerd://d1")}},
			{Name: "loop", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: term("containerd://l3")}},
			{Name: "pull", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}},
			{Name: "backoff", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}},
			{Name: "new", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
			{Name: "unknown"},
		},
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", ContainerID: "containerd://i1", State: corev1.ContainerState{Terminated: term("containerd://i1")}}},
	}
	tests := []struct {
		container string
		previous  bool
		id        string
		err       string
	}{
		{container: "run", id: "r2"},
		{container: "run", previous: true, id: "r1"},
		{container: "done", id: "d1"},
		{container: "done", previous: true, err: `previous terminated container "done" in pod "p" not found`},
		{container: "loop", id: "l3"},
		{container: "init", id: "i1"},
		{container: "pull", err: `container "pull" in pod "p" is waiting to start: image can't be pulled`},
		{container: "backoff", err: `container "backoff" in pod "p" is waiting to start: trying and failing to pull image`},
		{container: "new", err: `container "new" in pod "p" is waiting to start: ContainerCreating`},
		{container: "unknown", err: `container "unknown" in pod "p" is waiting to start - no logs yet`},
		{container: "nope", err: `container "nope" in pod "p" is not available`},
	}
	for _, tt := range tests {
		id, err := ContainerID("p", st, tt.container, tt.previous)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s previous=%v: err %v, want %q", tt.container, tt.previous, err, tt.err)
			}
			continue
		}
		if err != nil || id != tt.id {
			t.Errorf("%s previous=%v: %q, %v; want %q", tt.container, tt.previous, id, err, tt.id)
		}
	}
}
