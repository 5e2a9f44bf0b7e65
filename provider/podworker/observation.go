package podworker

import (
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/status"
)

// observation is what the host reported for one pod at one moment.
type observation struct {
	// sandbox is the pod's current sandbox, nil when there is none.
	sandbox *runtimeapi.PodSandboxStatus
	// containers holds every CRI container of the pod by container name, newest attempt first.
	containers map[string][]*runtimeapi.ContainerStatus
	// oldSandboxes are the pod's other sandboxes (replaced ones), with how many containers
	// each still holds.
	oldSandboxes map[string]int
	// inCurrent holds the ids of the containers in the current sandbox.
	inCurrent map[string]bool
}

// statusInput is what the pod's status is generated from: this observation and the reasons
// its containers wait that only Satellite knows. The caller adds the rest (host IP, health...).
func (o observation) statusInput(pod *corev1.Pod, w map[string]status.Waiting) status.Input {
	return status.Input{Pod: pod, Sandbox: o.sandbox, Containers: o.containers, Waiting: w}
}
