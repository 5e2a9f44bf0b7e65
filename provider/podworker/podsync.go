package podworker

import (
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/status"
)

// podSync is one pass of a pod's worker over its pod: what Satellite keeps of the pod, its
// spec, what the host showed of it, and the config of the sandbox its containers are created
// in (set once the sandbox is ready).
type podSync struct {
	rec *podRecord
	pod *corev1.Pod
	obs *observation
	sb  *runtimeapi.PodSandboxConfig
}

// sandboxID is the pod's current sandbox.
func (s *podSync) sandboxID() string { return s.obs.sandbox.GetId() }

// key names a container of the pod for its crash-loop back-off.
func (s *podSync) key(c *corev1.Container) string { return string(s.pod.UID) + "/" + c.Name }

// setWaiting records why a container is waiting, with a Warning event when the reason is new.
func (p *Worker) setWaiting(s *podSync, name string, w status.Waiting, eventReason, eventMessage string) {
	if prev := s.rec.waiting[name]; prev.Reason != w.Reason || prev.Message != w.Message {
		p.recorder.Event(s.pod, corev1.EventTypeWarning, eventReason, eventMessage)
	}
	s.rec.waiting[name] = w
}
