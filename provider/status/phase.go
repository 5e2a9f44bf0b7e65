package status

import (
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
)

// Phase is the kubelet's getPhase (pkg/kubelet/kubelet_pods.go) for a pod whose init
// containers and containers are as given; terminal is set once the pod has been killed.
func Phase(pod *corev1.Pod, inits, ctrs []corev1.ContainerStatus, terminal bool) corev1.PodPhase {
	if terminal {
		// A pod that has been killed is Succeeded only if every container exited 0
		// (getPhase with podIsTerminal); sidecars do not count.
		if allSucceeded(ctrs) {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	}
	var n phaseCounts
	for i := range pod.Spec.InitContainers {
		n.countInit(&pod.Spec.InitContainers[i], inits)
	}
	for _, c := range pod.Spec.Containers {
		n.countRegular(c.Name, ctrs)
	}
	return n.phase(pod.Spec.RestartPolicy, regularStarted(ctrs))
}

// phaseCounts are getPhase's tallies of a pod's containers.
type phaseCounts struct {
	pendingInit, pendingSidecars, failedInit      int
	unknown, running, waiting, stopped, succeeded int
}

// countInit counts an init container: a sidecar as getPhase counts one, others by how they
// ended.
func (n *phaseCounts) countInit(c *corev1.Container, inits []corev1.ContainerStatus) {
	s, ok := findStatus(inits, c.Name)
	if kubecontainer.IsSidecar(c) {
		n.countSidecar(s, ok)
		return
	}
	switch {
	case !ok, s.State.Running != nil:
		n.pendingInit++
	case s.State.Terminated != nil:
		if s.State.Terminated.ExitCode != 0 {
			n.failedInit++
		}
	case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
		if s.LastTerminationState.Terminated.ExitCode != 0 {
			n.failedInit++
		}
	default:
		n.pendingInit++
	}
}

// countSidecar counts a sidecar: terminated ones do not count; one not started yet holds the
// pod in Pending.
func (n *phaseCounts) countSidecar(s corev1.ContainerStatus, ok bool) {
	switch {
	case !ok:
		n.unknown++
	case s.State.Running != nil:
		if s.Started == nil || !*s.Started {
			n.pendingSidecars++
		}
		n.running++
	case s.State.Terminated != nil:
	case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
	case s.State.Waiting != nil:
		n.pendingSidecars++
		n.waiting++
	default:
		n.pendingSidecars++
		n.unknown++
	}
}

// countRegular counts a regular container.
func (n *phaseCounts) countRegular(name string, ctrs []corev1.ContainerStatus) {
	s, ok := findStatus(ctrs, name)
	switch {
	case !ok:
		n.unknown++
	case s.State.Running != nil:
		n.running++
	case s.State.Terminated != nil:
		n.stopped++
		if s.State.Terminated.ExitCode == 0 {
			n.succeeded++
		}
	case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
		n.stopped++ // restarting, or never to be restarted under policy Never
		if s.LastTerminationState.Terminated.ExitCode == 0 {
			n.succeeded++
		}
	default:
		n.waiting++
	}
}

// phase decides from the tallies, as getPhase does.
func (n *phaseCounts) phase(policy corev1.RestartPolicy, regularStarted bool) corev1.PodPhase {
	if n.failedInit > 0 && policy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case n.pendingInit > 0 || (n.pendingSidecars > 0 && !regularStarted) || n.waiting > 0:
		return corev1.PodPending
	case n.running > 0 && n.unknown == 0:
		return corev1.PodRunning
	case n.running == 0 && n.stopped > 0 && n.unknown == 0:
		switch {
		case policy == corev1.RestartPolicyAlways:
			return corev1.PodRunning // restarting
		case n.stopped == n.succeeded:
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

// RegularDone reports whether the pod's regular containers have all run their course: every
// one has exited and none will be restarted under the pod's restart policy. Its sidecars are
// then stopped, and the pod finishes.
func RegularDone(pod *corev1.Pod, ctrs []corev1.ContainerStatus) bool {
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

// SidecarStarted reports whether a running sidecar instance has started: at once, or once its
// startup probe has succeeded.
func SidecarStarted(c *corev1.Container, inst *runtimeapi.ContainerStatus, health map[string]Health) bool {
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
