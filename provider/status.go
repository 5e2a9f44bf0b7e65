package provider

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

// waiting is a reason a container is not running that only Satellite knows (an image pull
// that failed, a back-off in progress); it overrides the CRI state in the pod status.
type waiting struct {
	Reason, Message string
}

// statusInput is everything podStatus needs.
type statusInput struct {
	pod     *corev1.Pod
	obs     observation
	waiting map[string]waiting // by container name
	hostIP  string
	start   time.Time
	// terminal is set once the pod has been deleted on the host: containers without a
	// terminated state get one, as the kubelet reports for a pod it killed.
	terminal bool
	// health is what the probes say of running containers, by container name (probes.go).
	health map[string]containerHealth
}

// podStatus builds the pod's status from the host's state, the kubelet's way
// (pkg/kubelet/kubelet_pods.go: getPhase, generateAPIPodStatus).
func podStatus(in statusInput) corev1.PodStatus {
	pod := in.pod
	st := corev1.PodStatus{
		HostIP:    in.hostIP,
		HostIPs:   []corev1.HostIP{{IP: in.hostIP}},
		PodIP:     in.hostIP,
		PodIPs:    []corev1.PodIP{{IP: in.hostIP}},
		StartTime: timePtr(in.start),
		QOSClass:  qosClass(pod),
	}
	st.InitContainerStatuses = containerStatuses(pod.Spec.InitContainers, in)
	st.ContainerStatuses = containerStatuses(pod.Spec.Containers, in)
	applyHealth(st.ContainerStatuses, in.health, in.terminal)
	capTerminationMessages(pod, &st)
	initialized := allSucceeded(st.InitContainerStatuses)
	st.Phase = podPhase(pod.Spec.RestartPolicy, st.InitContainerStatuses, st.ContainerStatuses, initialized)
	if in.terminal {
		// A pod that has been killed is Succeeded only if every container exited 0
		// (kubelet getPhase with podIsTerminal).
		st.Phase = corev1.PodFailed
		if allSucceeded(st.ContainerStatuses) {
			st.Phase = corev1.PodSucceeded
		}
	}
	sandboxReady := in.obs.sandbox != nil && in.obs.sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY
	ready := initialized && allReady(st.ContainerStatuses) && st.Phase == corev1.PodRunning
	prev := pod.Status.Conditions
	st.Conditions = []corev1.PodCondition{
		condition(prev, corev1.PodReadyToStartContainers, sandboxReady && !in.terminal, ""),
		condition(prev, corev1.PodInitialized, initialized, "ContainersNotInitialized"),
		condition(prev, corev1.ContainersReady, ready, "ContainersNotReady"),
		condition(prev, corev1.PodReady, ready, "ContainersNotReady"),
		condition(prev, corev1.PodScheduled, true, ""),
	}
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		// A finished pod's containers are not ready, and the reason says why (kubelet: PodCompleted).
		for i := range st.Conditions {
			if t := st.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
				st.Conditions[i].Reason = "PodCompleted"
			}
		}
	}
	return st
}

func containerStatuses(specs []corev1.Container, in statusInput) []corev1.ContainerStatus {
	if len(specs) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, 0, len(specs))
	for _, c := range specs {
		out = append(out, containerStatus(c, in.obs.containers[c.Name], in.waiting, in.terminal))
	}
	return out
}

func containerStatus(c corev1.Container, history []*runtimeapi.ContainerStatus, w map[string]waiting, terminal bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	if len(history) == 0 {
		switch {
		case terminal:
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: "The container could not be located when the pod was terminated"}
		case w[c.Name].Reason != "":
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w[c.Name].Reason, Message: w[c.Name].Message}
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		return cs
	}
	latest := history[0]
	cs.ContainerID = "containerd://" + latest.Id
	cs.ImageID = latest.ImageRef
	cs.RestartCount = int32(latest.GetMetadata().GetAttempt())
	if len(history) > 1 {
		if t := terminatedState(history[1]); t != nil {
			cs.LastTerminationState.Terminated = t
		}
	}
	switch latest.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: nanoTime(latest.StartedAt)}
		cs.Ready = !terminal
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		cs.State.Terminated = terminatedState(latest)
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerStatusUnknown", Message: latest.Message}
	}
	if wt, ok := w[c.Name]; ok && wt.Reason != "" && cs.State.Running == nil && !terminal {
		// A container waiting to be started again: the last run becomes lastState.
		if cs.State.Terminated != nil {
			cs.LastTerminationState.Terminated = cs.State.Terminated
		}
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: wt.Reason, Message: wt.Message}}
	}
	started := cs.State.Running != nil
	cs.Started = &started
	return cs
}

func terminatedState(s *runtimeapi.ContainerStatus) *corev1.ContainerStateTerminated {
	if s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		return nil
	}
	reason := s.Reason
	if reason == "" {
		reason = "Error"
		if s.ExitCode == 0 {
			reason = "Completed"
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    s.ExitCode,
		Reason:      reason,
		Message:     s.Message,
		StartedAt:   nanoTime(s.StartedAt),
		FinishedAt:  nanoTime(s.FinishedAt),
		ContainerID: "containerd://" + s.Id,
	}
}

// podPhase follows the kubelet's getPhase for a pod whose containers are as given.
func podPhase(policy corev1.RestartPolicy, inits, ctrs []corev1.ContainerStatus, initialized bool) corev1.PodPhase {
	if !initialized {
		for _, s := range inits {
			if t := lastExit(s); t != nil && t.ExitCode != 0 && policy == corev1.RestartPolicyNever {
				return corev1.PodFailed
			}
		}
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, s := range ctrs {
		switch {
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
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case policy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case policy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		default:
			return corev1.PodRunning
		}
	}
	return corev1.PodPending
}

func lastExit(s corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	if s.State.Terminated != nil {
		return s.State.Terminated
	}
	return s.LastTerminationState.Terminated
}

func allSucceeded(ss []corev1.ContainerStatus) bool {
	for _, s := range ss {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			return false
		}
	}
	return true
}

func allReady(ss []corev1.ContainerStatus) bool {
	for _, s := range ss {
		if !s.Ready {
			return false
		}
	}
	return true
}

// condition keeps the previous transition time while the status does not change.
func condition(prev []corev1.PodCondition, t corev1.PodConditionType, ok bool, falseReason string) corev1.PodCondition {
	c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: falseReason}
	if ok {
		c.Status, c.Reason = corev1.ConditionTrue, ""
	}
	for _, p := range prev {
		if p.Type == t && p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
			return c
		}
	}
	c.LastTransitionTime = metav1.NewTime(time.Now().Truncate(time.Second))
	return c
}

// qosClass is the pod's QoS class (pkg/apis/core/helper/qos): Guaranteed when every container
// has equal CPU and memory requests and limits, BestEffort when none has any, else Burstable.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	any, guaranteed := false, true
	for _, c := range all {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq || hasLim {
				any = true
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func nanoTime(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, ns))
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// sortHistory orders a container's CRI instances newest attempt first.
func sortHistory(h []*runtimeapi.ContainerStatus) {
	sort.Slice(h, func(i, j int) bool {
		ai, aj := h[i].GetMetadata().GetAttempt(), h[j].GetMetadata().GetAttempt()
		if ai != aj {
			return ai > aj
		}
		return h[i].CreatedAt > h[j].CreatedAt
	})
}
