package prober

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/status"
)

// result is a probe's recorded verdict on one container instance (the kubelet's
// results.Result); resultNone is no verdict yet.
type result int8

const (
	resultNone result = iota
	resultSuccess
	resultFailure
)

// set records a worker's result and notifies the pod's worker when it changed.
func (m *Manager) set(uid types.UID, id string, k kind, r result) {
	m.mu.Lock()
	var changed bool
	if pp := m.byPod[uid]; pp != nil {
		if rs := pp.results[id]; rs != nil && rs[k] != r {
			rs[k], changed = r, true
		}
	}
	m.mu.Unlock()
	if changed {
		m.notify(uid)
	}
}

// result is the recorded result of one probe of one container instance.
func (m *Manager) result(uid types.UID, id string, k kind) result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pp := m.byPod[uid]; pp != nil {
		if rs := pp.results[id]; rs != nil {
			return rs[k]
		}
	}
	return resultNone
}

// started reports whether the container instance has started: it has no startup probe, or
// its startup probe has succeeded.
func (m *Manager) started(uid types.UID, c *corev1.Container, id string) bool {
	return c.StartupProbe == nil || m.result(uid, id, startup) == resultSuccess
}

// KillReason is which probe condemns the running container instance ("liveness" or
// "startup", the kubelet's order), or "" when none does.
func (m *Manager) KillReason(uid types.UID, id string) string {
	switch {
	case m.result(uid, id, liveness) == resultFailure:
		return "liveness"
	case m.result(uid, id, startup) == resultFailure:
		return "startup"
	}
	return ""
}

// Health is the started and ready state of the pod's running containers that have probes,
// by container name, from containers (every CRI instance by container name, newest first);
// containers without probes are not in it (started and ready while they run). A started
// container whose readiness probe has not yet succeeded is probed at once, as the kubelet's
// UpdatePodStatus asks for.
func (m *Manager) Health(pod *corev1.Pod, containers map[string][]*runtimeapi.ContainerStatus) map[string]status.Health {
	out := map[string]status.Health{}
	for _, c := range kubecontainer.LongRunning(pod) {
		h := containers[c.Name]
		if !hasProbes(c) || len(h) == 0 || h[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		id := h[0].Id
		ch := healthOf(c, id, m.result(pod.UID, id, startup), m.result(pod.UID, id, readiness))
		if ch.Started && !ch.Ready {
			m.triggerReadiness(pod.UID, c.Name)
		}
		out[c.Name] = ch
	}
	return out
}

// healthOf is the kubelet's started and ready for a running container from its results: not
// started until a startup probe succeeds; not ready before it has started, nor until a
// readiness probe succeeds; without those probes, started and ready.
func healthOf(c *corev1.Container, id string, startupResult, readinessResult result) status.Health {
	h := status.Health{ID: id, Started: c.StartupProbe == nil || startupResult == resultSuccess}
	h.Ready = h.Started && (c.ReadinessProbe == nil || readinessResult == resultSuccess)
	return h
}

func (m *Manager) triggerReadiness(uid types.UID, container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pp := m.byPod[uid]; pp != nil {
		if w := pp.workers[probeKey{container, readiness}]; w != nil {
			select {
			case w.trigger <- struct{}{}:
			default:
			}
		}
	}
}

func hasProbes(c *corev1.Container) bool {
	return c.StartupProbe != nil || c.ReadinessProbe != nil || c.LivenessProbe != nil
}
