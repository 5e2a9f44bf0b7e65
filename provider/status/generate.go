package status

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/logs"
)

// Waiting is a reason a container is not running that only Satellite knows (an image pull
// that failed, a back-off in progress); it overrides the CRI state in the pod status.
type Waiting struct {
	Reason, Message string
}

// Input is everything Generate needs: what the host reported for one pod at one moment, and
// what the pod worker and the prober know of it.
type Input struct {
	Pod *corev1.Pod
	// Sandbox is the pod's current sandbox, nil when there is none.
	Sandbox *runtimeapi.PodSandboxStatus
	// Containers holds every CRI container of the pod by container name, newest attempt first
	// (SortHistory).
	Containers map[string][]*runtimeapi.ContainerStatus
	Waiting    map[string]Waiting // by container name
	HostIP     string
	Start      time.Time
	// Terminal is set once the pod has been deleted on the host: containers without a
	// terminated state get one, as the kubelet reports for a pod it killed.
	Terminal bool
	// Health is what the probes say of running containers, by container name (package prober).
	Health map[string]Health
	// Others are the pod's conditions that other controllers set, as the API has them.
	Others []corev1.PodCondition
}

// Generate builds the pod's status from the host's state, the kubelet's way
// (pkg/kubelet/kubelet_pods.go: getPhase, generateAPIPodStatus).
func Generate(in Input) corev1.PodStatus {
	pod := in.Pod
	st := corev1.PodStatus{
		HostIP:    in.HostIP,
		HostIPs:   []corev1.HostIP{{IP: in.HostIP}},
		PodIP:     in.HostIP,
		PodIPs:    []corev1.PodIP{{IP: in.HostIP}},
		StartTime: timePtr(in.Start),
		QOSClass:  qosClass(pod),
	}
	st.InitContainerStatuses = containerStatuses(pod.Spec.InitContainers, in)
	for i := range st.InitContainerStatuses {
		// An init container is ready once it has succeeded; a sidecar as its probes say, as
		// a regular container (the kubelet's prober manager).
		if !kubecontainer.IsSidecar(&pod.Spec.InitContainers[i]) {
			t := st.InitContainerStatuses[i].State.Terminated
			st.InitContainerStatuses[i].Ready = t != nil && t.ExitCode == 0
		}
	}
	ApplyHealth(st.InitContainerStatuses, in.Health, in.Terminal)
	st.ContainerStatuses = containerStatuses(pod.Spec.Containers, in)
	ApplyHealth(st.ContainerStatuses, in.Health, in.Terminal)
	logs.CapTerminationMessages(pod, &st)
	st.Phase = Phase(pod, st.InitContainerStatuses, st.ContainerStatuses, in.Terminal)
	sandboxReady := in.Sandbox != nil && in.Sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY
	st.Conditions = Conditions(pod, &st, sandboxReady && !in.Terminal, pod.Status.Conditions, in.Others)
	return st
}

func containerStatuses(specs []corev1.Container, in Input) []corev1.ContainerStatus {
	if len(specs) == 0 {
		return nil
	}
	// A container not created yet waits in ContainerCreating, or in a pod with init
	// containers in PodInitializing (kubelet convertToAPIContainerStatuses).
	pending := "ContainerCreating"
	if len(in.Pod.Spec.InitContainers) > 0 {
		pending = "PodInitializing"
	}
	out := make([]corev1.ContainerStatus, 0, len(specs))
	for _, c := range specs {
		out = append(out, containerStatus(c, in.Containers[c.Name], in.Waiting, in.Terminal, pending))
	}
	return out
}

func containerStatus(c corev1.Container, history []*runtimeapi.ContainerStatus, w map[string]Waiting, terminal bool, pending string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	if len(history) == 0 {
		switch {
		case terminal:
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: "The container could not be located when the pod was terminated"}
		case w[c.Name].Reason != "":
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w[c.Name].Reason, Message: w[c.Name].Message}
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: pending}
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

// SortHistory orders a container's CRI instances newest attempt first.
func SortHistory(h []*runtimeapi.ContainerStatus) {
	sort.Slice(h, func(i, j int) bool {
		ai, aj := h[i].GetMetadata().GetAttempt(), h[j].GetMetadata().GetAttempt()
		if ai != aj {
			return ai > aj
		}
		return h[i].CreatedAt > h[j].CreatedAt
	})
}
