package podworker

import (
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/satellite-vk/satellite/provider/status"
)

// otherConditions are the conditions other controllers have set on the pod, as the pod
// lister has them now; without a copy there, those of the pod's last published status.
func (p *Worker) otherConditions(pod *corev1.Pod) []corev1.PodCondition {
	from := pod
	if p.lister != nil {
		if api, err := p.lister.Pods(pod.Namespace).Get(pod.Name); err == nil && api.UID == pod.UID {
			from = api
		}
	}
	return status.Others(from.Status.Conditions)
}

// othersChanged reports whether another controller changed the pod's conditions since its last
// published status (a readiness gate turned True, say): the pod's Ready must be decided again.
func (p *Worker) othersChanged(pod *corev1.Pod) bool {
	return !apiequality.Semantic.DeepEqual(status.Others(pod.Status.Conditions), p.otherConditions(pod))
}
