package status

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The status holds at most an equal share of 12 KiB of termination message per container of
// the pod, in state and lastState, cut at its end as the kubelet's status manager cuts it.
func TestCapTerminationMessages(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 4093) + "END" // what a file of more than 4096 bytes gives
	withMessage := func(s *runtimeapi.ContainerStatus, msg string) *runtimeapi.ContainerStatus {
		s.Message = msg
		return s
	}
	const exitedState = runtimeapi.ContainerState_CONTAINER_EXITED
	tests := []struct {
		name        string
		pod         *corev1.Pod
		history     []*runtimeapi.ContainerStatus
		state, last int // lengths of the first container's messages
	}{
		{name: "alone: the whole 4096 bytes", pod: testPod(corev1.RestartPolicyNever, nil, "a"),
			history: []*runtimeapi.ContainerStatus{withMessage(ctr("a", 0, exitedState, 1), long)}, state: 4096},
		{name: "one of seven: 12288/7", pod: testPod(corev1.RestartPolicyNever, nil, "a", "b", "c", "d", "e", "f", "g"),
			history: []*runtimeapi.ContainerStatus{withMessage(ctr("a", 0, exitedState, 1), long)}, state: 1755},
		{name: "init containers count", pod: testPod(corev1.RestartPolicyNever, []string{"i1", "i2"}, "a"),
			history: []*runtimeapi.ContainerStatus{withMessage(ctr("a", 0, exitedState, 1), long)}, state: 4096},
		{name: "lastState too", pod: testPod(corev1.RestartPolicyAlways, []string{"i1", "i2", "i3"}, "a"),
			history: []*runtimeapi.ContainerStatus{ctr("a", 1, runtimeapi.ContainerState_CONTAINER_RUNNING, 0), withMessage(ctr("a", 0, exitedState, 1), long)}, state: -1, last: 3072},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := Generate(Input{Pod: tt.pod, Sandbox: readySandbox, Containers: map[string][]*runtimeapi.ContainerStatus{"a": tt.history},
				HostIP: "10.0.0.5", Start: time.Now()})
			cs := st.ContainerStatuses[0]
			state, last := -1, 0
			if cs.State.Terminated != nil {
				state = len(cs.State.Terminated.Message)
				if !strings.HasPrefix(long, cs.State.Terminated.Message) {
					t.Errorf("message is not the beginning of the file's last 4096 bytes: %q", cs.State.Terminated.Message)
				}
			}
			if cs.LastTerminationState.Terminated != nil {
				last = len(cs.LastTerminationState.Terminated.Message)
			}
			if state != tt.state || last != tt.last {
				t.Errorf("messages of %d and %d bytes in state and lastState, want %d and %d", state, last, tt.state, tt.last)
			}
			if tt.history[len(tt.history)-1].Message != long {
				t.Error("the runtime's status was changed")
			}
		})
	}
}
