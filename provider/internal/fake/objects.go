package fake

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// Resources are a container's CPU and memory requests and limits; an empty string leaves one
// out.
func Resources(reqCPU, reqMem, limCPU, limMem string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	set := func(l corev1.ResourceList, n corev1.ResourceName, v string) {
		if v != "" {
			l[n] = resource.MustParse(v)
		}
	}
	set(r.Requests, corev1.ResourceCPU, reqCPU)
	set(r.Requests, corev1.ResourceMemory, reqMem)
	set(r.Limits, corev1.ResourceCPU, limCPU)
	set(r.Limits, corev1.ResourceMemory, limMem)
	return r
}

// SamplePod is shop/web-0 (UID 1111-2222, grace period 45 s) with one container "server",
// whose command, arguments, working directory, environment, TTY and stdin are set, and a label
// that spoofs the runtime's pod-name label (io.kubernetes.pod.name).
func SamplePod() *corev1.Pod {
	grace := int64(45)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-0", Namespace: "shop", UID: "1111-2222",
			Labels:      map[string]string{"app": "web", "io.kubernetes.pod.name": "spoofed"},
			Annotations: map[string]string{"note": "x"},
		},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "server", Image: "example.test/web:1", Command: []string{"/srv"}, Args: []string{"--port", "80"},
				WorkingDir: "/data", Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: ""}},
				TerminationMessagePath: "/dev/termination-log", TTY: true, Stdin: true,
			}},
		},
	}
}
