package kubecontainer

import corev1 "k8s.io/api/core/v1"

// IsSidecar reports whether an init container is a sidecar: restartPolicy Always, a
// restartable init container (KEP-753, GA in Kubernetes 1.33). It starts in its turn among the
// init containers, the next one waiting only until it has started, and runs beside the
// regular containers, restarted whenever it exits, until they are done.
func IsSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// LongRunning are the containers that run beside each other once the pod has initialized:
// the sidecars and the regular containers. Only they are probed and have lifecycle hooks.
func LongRunning(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if IsSidecar(&pod.Spec.InitContainers[i]) {
			out = append(out, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// FindLongRunning is the pod's sidecar or regular container of that name, nil when there is
// none.
func FindLongRunning(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range LongRunning(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
