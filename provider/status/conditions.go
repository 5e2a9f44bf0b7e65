package status

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
)

// The reasons of the pod's conditions, as the kubelet's (pkg/kubelet/status/generate.go).
const (
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonPodCompleted             = "PodCompleted"
	reasonPodFailed                = "PodFailed"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
)

// kubeletConditions are the condition types the kubelet sets; the pod's other conditions
// belong to other controllers (readiness gates, DisruptionTarget) and are kept as the API
// has them (pkg/kubelet/types: PodConditionByKubelet).
var kubeletConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled: true, corev1.PodReady: true, corev1.PodInitialized: true, corev1.ContainersReady: true,
	corev1.PodReadyToStartContainers: true, corev1.PodResizePending: true, corev1.PodResizeInProgress: true,
}

// Conditions are the pod's conditions as the kubelet generates them, for a pod whose status
// st holds its phase and container statuses; others are the conditions other controllers set
// on the pod, which readiness gates read. Transition times are kept from prev while a
// condition's status does not change.
func Conditions(pod *corev1.Pod, st *corev1.PodStatus, sandboxReady bool, prev, others []corev1.PodCondition) []corev1.PodCondition {
	containersReady := containersReadyCondition(pod, st)
	conds := []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: conditionStatus(sandboxReady)},
		initializedCondition(pod, st),
		containersReady,
		readyCondition(pod, containersReady, others),
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	}
	for i := range conds {
		conds[i].LastTransitionTime = transitionTime(prev, conds[i])
	}
	return append(conds, others...)
}

func conditionStatus(ok bool) corev1.ConditionStatus {
	if ok {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func transitionTime(prev []corev1.PodCondition, c corev1.PodCondition) metav1.Time {
	for _, p := range prev {
		if p.Type == c.Type && p.Status == c.Status {
			return p.LastTransitionTime
		}
	}
	return metav1.NewTime(time.Now().Truncate(time.Second))
}

// containersReadyCondition is GenerateContainersReadyCondition: True when every container is
// ready; a finished pod's reason says how it finished.
func containersReadyCondition(pod *corev1.Pod, st *corev1.PodStatus) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}
	switch st.Phase {
	case corev1.PodSucceeded:
		c.Reason = reasonPodCompleted
		return c
	case corev1.PodFailed:
		c.Reason = reasonPodFailed
		return c
	}
	var sidecars []corev1.Container
	for _, ctr := range pod.Spec.InitContainers {
		if kubecontainer.IsSidecar(&ctr) {
			sidecars = append(sidecars, ctr)
		}
	}
	notReady := func(_ *corev1.Container, s corev1.ContainerStatus) bool { return !s.Ready }
	unknown, unready := classify(sidecars, st.InitContainerStatuses, notReady)
	u, r := classify(pod.Spec.Containers, st.ContainerStatuses, notReady)
	if msg := containersMessage(append(unknown, u...), append(unready, r...), "unready"); msg != "" {
		c.Reason, c.Message = reasonContainersNotReady, msg
		return c
	}
	c.Status = corev1.ConditionTrue
	return c
}

// readyCondition is GeneratePodReadyCondition: ContainersReady's, and once that is True, the
// readiness gates': each names a condition that another controller must have set True.
func readyCondition(pod *corev1.Pod, containersReady corev1.PodCondition, others []corev1.PodCondition) corev1.PodCondition {
	if containersReady.Status != corev1.ConditionTrue {
		return corev1.PodCondition{Type: corev1.PodReady, Status: containersReady.Status, Reason: containersReady.Reason, Message: containersReady.Message}
	}
	var msgs []string
	for _, gate := range pod.Spec.ReadinessGates {
		c, ok := findCondition(others, gate.ConditionType)
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(gate.ConditionType)))
		case c.Status != corev1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(gate.ConditionType), c.Status))
		}
	}
	if len(msgs) > 0 {
		return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: reasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
}

// initializedCondition is GeneratePodInitializedCondition: True once every init container has
// succeeded and every sidecar has started, or once a regular container has started.
func initializedCondition(pod *corev1.Pod, st *corev1.PodStatus) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	unknown, incomplete := classify(pod.Spec.InitContainers, st.InitContainerStatuses, func(ctr *corev1.Container, s corev1.ContainerStatus) bool {
		if kubecontainer.IsSidecar(ctr) {
			return s.Started == nil || !*s.Started
		}
		return !s.Ready
	})
	if st.Phase == corev1.PodSucceeded && len(unknown) == 0 {
		c.Reason = reasonPodCompleted
		return c
	}
	if regularStarted(st.ContainerStatuses) {
		return c
	}
	if msg := containersMessage(unknown, incomplete, "incomplete"); msg != "" {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, reasonContainersNotInitialized, msg
	}
	return c
}

// classify names the containers without a status, and those whose status is bad.
func classify(ctrs []corev1.Container, statuses []corev1.ContainerStatus, bad func(*corev1.Container, corev1.ContainerStatus) bool) (unknown, bads []string) {
	for i := range ctrs {
		s, ok := findStatus(statuses, ctrs[i].Name)
		switch {
		case !ok:
			unknown = append(unknown, ctrs[i].Name)
		case bad(&ctrs[i], s):
			bads = append(bads, ctrs[i].Name)
		}
	}
	return unknown, bads
}

// containersMessage is the kubelet's message naming containers: "containers with unknown
// status: [a], containers with <what> status: [b c]"; "" when it names none.
func containersMessage(unknown, bad []string, what string) string {
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(bad) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with %s status: %s", what, bad))
	}
	return strings.Join(msgs, ", ")
}

// Others are the conditions of conds that other controllers set: not the kubelet's
// (pkg/kubelet/types: PodConditionByKubelet). Readiness gates read them.
func Others(conds []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range conds {
		if !kubeletConditions[c.Type] {
			out = append(out, c)
		}
	}
	return out
}

func findCondition(cs []corev1.PodCondition, t corev1.PodConditionType) (corev1.PodCondition, bool) {
	for _, c := range cs {
		if c.Type == t {
			return c, true
		}
	}
	return corev1.PodCondition{}, false
}
