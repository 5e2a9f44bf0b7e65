package podworker

import (
	"testing"

	"github.com/satellite-vk/satellite/provider/internal/fake"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var samplePod = fake.SamplePod

func TestCurrentSandbox(t *testing.T) {
	t.Parallel()
	sb := func(id string, attempt uint32, ready bool, created int64) *runtimeapi.PodSandbox {
		st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		if ready {
			st = runtimeapi.PodSandboxState_SANDBOX_READY
		}
		return &runtimeapi.PodSandbox{Id: id, Metadata: &runtimeapi.PodSandboxMetadata{Attempt: attempt}, State: st, CreatedAt: created}
	}
	tests := []struct {
		items []*runtimeapi.PodSandbox
		want  string
	}{
		{items: nil, want: ""},
		{items: []*runtimeapi.PodSandbox{sb("a", 0, false, 1)}, want: "a"},
		{items: []*runtimeapi.PodSandbox{sb("a", 1, false, 2), sb("b", 0, true, 1)}, want: "b"},
		{items: []*runtimeapi.PodSandbox{sb("a", 0, false, 1), sb("b", 1, false, 2)}, want: "b"},
		{items: []*runtimeapi.PodSandbox{sb("a", 1, true, 1), sb("b", 1, true, 2)}, want: "b"},
	}
	for i, tt := range tests {
		got := currentSandbox(tt.items)
		if (got == nil && tt.want != "") || (got != nil && got.Id != tt.want) {
			t.Errorf("case %d: got %v, want %q", i, got, tt.want)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	t.Parallel()
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		policy  corev1.RestartPolicy
		init    bool
		sidecar bool
		exit    int32
		want    bool
	}{
		{corev1.RestartPolicyAlways, false, false, 0, true},
		{corev1.RestartPolicyAlways, false, false, 1, true},
		{corev1.RestartPolicyAlways, true, false, 0, false},
		{corev1.RestartPolicyAlways, true, false, 1, true},
		{corev1.RestartPolicyOnFailure, false, false, 0, false},
		{corev1.RestartPolicyOnFailure, false, false, 2, true},
		{corev1.RestartPolicyNever, false, false, 2, false},
		{corev1.RestartPolicyNever, true, false, 2, false},
		// A sidecar is restarted whatever the pod's policy and its exit code.
		{corev1.RestartPolicyNever, true, true, 0, true},
		{corev1.RestartPolicyOnFailure, true, true, 0, true},
	}
	for _, tt := range tests {
		c := &corev1.Container{Name: "c"}
		if tt.sidecar {
			c.RestartPolicy = &always
		}
		if got := shouldRestart(c, tt.policy, tt.init, tt.exit); got != tt.want {
			t.Errorf("shouldRestart(sidecar=%v, %s, init=%v, %d) = %v, want %v", tt.sidecar, tt.policy, tt.init, tt.exit, got, tt.want)
		}
	}
}
