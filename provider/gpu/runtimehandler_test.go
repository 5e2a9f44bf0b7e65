package gpu

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// In env mode a pod asking for GPUs, in any container, runs with the GPU handler; in CDI mode,
// without GPUs or with GPUs off, with containerd's default.
func TestGPURuntimeHandler(t *testing.T) {
	t.Parallel()
	gpu, _ := gpuPod("gpu", 1)
	none, _ := gpuPod("none", 0)
	initGPU, _ := gpuPod("init", 0)
	initGPU.Spec.InitContainers = []corev1.Container{{Name: "warm", Resources: gpu.Spec.Containers[0].Resources}}
	sidecar, _ := gpuPod("sidecar", 2)
	sidecar.Spec.Containers = append([]corev1.Container{{Name: "log"}}, sidecar.Spec.Containers...)
	tests := []struct {
		pod  *corev1.Pod
		mode Mode
		want string
	}{
		{gpu, ModeEnv, "nvidia"},
		{initGPU, ModeEnv, "nvidia"},
		{sidecar, ModeEnv, "nvidia"},
		{none, ModeEnv, ""},
		{gpu, ModeCDI, ""},
		{gpu, ModeOff, ""},
	}
	for _, tt := range tests {
		if got := defaultHandler(tt.pod, tt.mode, "nvidia"); got != tt.want {
			t.Errorf("%s in %s mode: handler %q, want %q", tt.pod.Name, tt.mode, got, tt.want)
		}
	}
}

// A pod with a runtimeClassName cannot start where Satellite has no RuntimeClass getter.
func TestRuntimeHandlerWithoutAPI(t *testing.T) {
	t.Parallel()
	m := New(Config{}, nil, nil)
	pod, _ := gpuPod("web-0", 0)
	pod.Spec.RuntimeClassName = ptr.To("kata")
	if _, err := m.RuntimeHandler(context.Background(), pod); err == nil || !strings.Contains(err.Error(), "failed to lookup RuntimeClass kata") {
		t.Errorf("error %v, want failed to lookup RuntimeClass kata", err)
	}
}
