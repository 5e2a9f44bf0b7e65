package provider

import (
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/status"
)

// podPhase is the kubelet's getPhase (pkg/kubelet/kubelet_pods.go) for a pod whose init
// containers and containers are as given; terminal is set once the pod has been killed.
func podPhase(pod *corev1.Pod, inits, ctrs []corev1.ContainerStatus, terminal bool) corev1.PodPhase {
	if terminal {
		// A pod that has been killed is Succeeded only if every container exited 0
		// (getPhase with podIsTerminal); sidecars do not count.
		if allSucceeded(ctrs) {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	}
	policy := pod.Spec.RestartPolicy
	var pendingInit, pendingSidecars, failedInit int
	var unknown, running, waiting, stopped, succeeded int
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s, ok := findStatus(inits, c.Name)
		if kubecontainer.IsSidecar(c) {
			// Terminated sidecars do not count; one not started yet holds the pod in Pending.
			switch {
			case !ok:
				unknown++
			case s.State.Running != nil:
				if s.Started == nil || !*s.Started {
					pendingSidecars++
				}
				running++
			case s.State.Terminated != nil:
			case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			case s.State.Waiting != nil:
				pendingSidecars++
				waiting++
			default:
				pendingSidecars++
				unknown++
			}
			continue
		}
		switch {
		case !ok, s.State.Running != nil:
			pendingInit++
		case s.State.Terminated != nil:
			if s.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			if s.LastTerminationState.Terminated.ExitCode != 0 {
				failedInit++
			}
		default:
			pendingInit++
		}
	}
	for _, c := range pod.Spec.Containers {
		s, ok := findStatus(ctrs, c.Name)
		switch {
		case !ok:
			unknown++
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			stopped++ // restarting, or never to be restarted under policy Never
			if s.LastTerminationState.Terminated.ExitCode == 0 {
				succeeded++
			}
		default:
			waiting++
		}
	}
	if failedInit > 0 && policy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0 || (pendingSidecars > 0 && !regularStarted(ctrs)) || waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		switch {
		case policy == corev1.RestartPolicyAlways:
			return corev1.PodRunning // restarting
		case stopped == succeeded:
			return corev1.PodSucceeded
		case policy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		}
		return corev1.PodRunning // OnFailure: restarting
	}
	return corev1.PodPending
}

// regularStarted reports whether a regular container has run: the pod has been initialized
// (kubecontainer.HasAnyRegularContainerStarted).
func regularStarted(ctrs []corev1.ContainerStatus) bool {
	for _, s := range ctrs {
		if s.State.Running != nil || s.State.Terminated != nil {
			return true
		}
	}
	return false
}

// regularDone reports whether the pod's regular containers have all run their course: every
// one has exited and none will be restarted under the pod's restart policy. Its sidecars are
// then stopped, and the pod finishes.
func regularDone(pod *corev1.Pod, ctrs []corev1.ContainerStatus) bool {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || len(pod.Spec.Containers) == 0 {
		return false
	}
	for _, c := range pod.Spec.Containers {
		s, ok := findStatus(ctrs, c.Name)
		if !ok || s.State.Terminated == nil {
			return false
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && s.State.Terminated.ExitCode != 0 {
			return false
		}
	}
	return true
}

// sidecarStarted reports whether a running sidecar instance has started: at once, or once its
// startup probe has succeeded.
func sidecarStarted(c *corev1.Container, inst *runtimeapi.ContainerStatus, health map[string]status.Health) bool {
	if c.StartupProbe == nil {
		return true
	}
	h, ok := health[c.Name]
	return ok && h.ID == inst.Id && h.Started
}

func findStatus(ss []corev1.ContainerStatus, name string) (corev1.ContainerStatus, bool) {
	for _, s := range ss {
		if s.Name == name {
			return s, true
		}
	}
	return corev1.ContainerStatus{}, false
}
