package logs

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ContainerID picks the container instance whose log `kubectl logs` asks for, from the pod
// status, with the kubelet's errors for the cases where there is none
// (pkg/kubelet/kubelet_pods.go, validateContainerLogStatus). The errors reach kubectl as they
// are, as Bad Request, as the kubelet's do.
func ContainerID(podName string, st *corev1.PodStatus, container string, previous bool) (string, error) {
	cs, found := findStatus(st.ContainerStatuses, container)
	if !found {
		cs, found = findStatus(st.InitContainerStatuses, container)
	}
	if !found {
		return "", fmt.Errorf("container %q in pod %q is not available", container, podName)
	}
	last := cs.LastTerminationState.Terminated
	waiting, running, terminated := cs.State.Waiting, cs.State.Running, cs.State.Terminated
	var id string
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, podName)
		}
		id = last.ContainerID
	case running != nil:
		id = cs.ContainerID
	case terminated != nil:
		id = terminated.ContainerID
		if id == "" && last != nil {
			id = last.ContainerID
		}
		if id == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", container, podName)
		}
	case last != nil:
		if last.ContainerID == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", container, podName)
		}
		id = last.ContainerID
	case waiting != nil:
		switch waiting.Reason {
		case "ErrImagePull":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", container, podName)
		case "ImagePullBackOff":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", container, podName)
		default:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: %v", container, podName, waiting.Reason)
		}
	default:
		return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", container, podName)
	}
	return strings.TrimPrefix(id, "containerd://"), nil
}

func findStatus(ss []corev1.ContainerStatus, name string) (corev1.ContainerStatus, bool) {
	for _, s := range ss {
		if s.Name == name {
			return s, true
		}
	}
	return corev1.ContainerStatus{}, false
}
