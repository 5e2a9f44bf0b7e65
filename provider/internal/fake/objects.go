package fake

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus is a CRI container status of the named container at an attempt, in a state
// (with the exit code when exited): id "<name>-<a + attempt>", started attempt seconds after
// 2026-01-01, run for a second when exited.
func ContainerStatus(name string, attempt uint32, state runtimeapi.ContainerState, exit int32) *runtimeapi.ContainerStatus {
	s := &runtimeapi.ContainerStatus{
		Id:        name + "-" + string(rune('a'+attempt)),
		Metadata:  &runtimeapi.ContainerMetadata{Name: name, Attempt: attempt},
		State:     state,
		ImageRef:  "sha256:abc",
		StartedAt: time.Date(2026, 1, 1, 0, 0, int(attempt), 0, time.UTC).UnixNano(),
	}
	if state == runtimeapi.ContainerState_CONTAINER_EXITED {
		s.ExitCode = exit
		s.FinishedAt = s.StartedAt + int64(time.Second)
	}
	return s
}

// Pod is a pod with a restart policy, init containers and containers of the given names, each
// of image "img".
func Pod(policy corev1.RestartPolicy, inits []string, names ...string) *corev1.Pod {
	p := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy}}
	for _, n := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "img"})
	}
	for _, n := range names {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "img"})
	}
	return p
}
