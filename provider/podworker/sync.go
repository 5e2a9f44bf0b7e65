package podworker

import (
	"context"
	"errors"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/status"
	"github.com/satellite-vk/satellite/remote"
)

// retryAfterError is how soon a pod is synced again after the host failed it.
const retryAfterError = 2 * time.Second

// syncPod reconciles one pod with the host; it is only ever run by the pod's worker.
func (p *Worker) syncPod(ctx context.Context, uid types.UID) (time.Duration, bool) {
	rec, pod, deleting, grace := p.store.record(uid)
	if rec == nil {
		return 0, true
	}
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("pod", pod.Namespace+"/"+pod.Name))
	if deleting {
		return p.syncDeleting(ctx, rec, pod, grace)
	}
	if reason, why := kuberuntime.Admit(pod, p.cfg.DenyHostAccess); why != "" {
		p.reject(rec, pod, reason, why)
		return 0, false
	}
	if reason, why := p.admitPorts(pod); why != "" {
		p.reject(rec, pod, reason, why)
		return 0, false
	}
	defer p.syncPorts(ctx, rec, uid)
	if pastDeadline(rec, pod) {
		return p.failPastDeadline(ctx, rec, pod)
	}
	obs, err := p.observe(ctx, rec, pod)
	if err != nil {
		log.G(ctx).WithError(err).Warn("cannot read pod state from the host; keeping its last status")
		return retryAfterError, false
	}
	s := &podSync{rec: rec, pod: pod, obs: &obs}
	again, acted := p.act(ctx, s)
	if acted {
		if obs, err = p.observe(ctx, rec, pod); err != nil {
			log.G(ctx).WithError(err).Warn("cannot read pod state from the host after acting on it")
			return retryAfterError, false
		}
		// The pod finished in what was done (a container that could not start, with
		// restartPolicy Never): its sandbox is stopped now, as after any other end, and not
		// at a next sync that may never come.
		if obs.sandbox != nil && obs.sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY && finished(rec, pod, obs) {
			if _, stopped := p.act(ctx, s); stopped {
				if obs, err = p.observe(ctx, rec, pod); err != nil {
					log.G(ctx).WithError(err).Warn("cannot read pod state from the host after stopping its sandbox")
					return retryAfterError, false
				}
			}
		}
	}
	p.probes.Sync(ctx, pod, obs.containers)
	if wait := p.publishStatus(ctx, rec, pod, obs, false); wait > 0 {
		return wait, false
	}
	return wakeForDeadline(rec, pod, again), false
}

// terminalHold bounds how long a finished pod's status waits for its sandbox to be seen
// stopped.
const terminalHold = 10 * time.Second

// holdTerminal tells how soon to look again instead of publishing a finished pod (Succeeded,
// Failed) whose sandbox the host still shows ready: a stop that failed, or a runtime that
// reports a stop a moment late (0: publish now). virtual-kubelet writes no status once the
// API has the pod finished, so the first finished status is the last one: published with a
// ready sandbox, it would keep PodReadyToStartContainers True for good, where the kubelet
// shows False. After terminalHold the status is published as it is.
func holdTerminal(ctx context.Context, rec *podRecord, phase corev1.PodPhase, sandboxReady bool) time.Duration {
	if !sandboxReady || (phase != corev1.PodSucceeded && phase != corev1.PodFailed) {
		rec.terminalHeld = time.Time{}
		return 0
	}
	if rec.terminalHeld.IsZero() {
		rec.terminalHeld = time.Now()
	}
	if time.Since(rec.terminalHeld) >= terminalHold {
		log.G(ctx).Warnf("the pod finished but its sandbox is still ready after %v; publishing its status as it is", terminalHold)
		return 0
	}
	return 200 * time.Millisecond
}

func (p *Worker) syncDeleting(ctx context.Context, rec *podRecord, pod *corev1.Pod, grace int64) (time.Duration, bool) {
	p.probes.Forget(pod.UID)
	obs, err := p.killPod(ctx, rec, pod, grace)
	if err != nil {
		log.G(ctx).WithError(err).Warn("pod not yet removed from the host; will try again")
		return retryAfterError, false
	}
	p.publishStatus(ctx, rec, pod, obs, true)
	p.ports.Remove(ctx, string(pod.UID))
	p.store.remove(pod.UID)
	p.images.Forget(pod.UID)
	p.volumes.Forget(pod.UID)
	p.crashLoop.forget(pod)
	return 0, true
}

// reject fails a pod that cannot run on this node, as the kubelet fails a pod at admission:
// phase Failed with the reason and message, a Warning event, nothing created on the host.
func (p *Worker) reject(rec *podRecord, pod *corev1.Pod, reason, message string) {
	if rec.rejected == message {
		return
	}
	rec.rejected = message
	p.recorder.Event(pod, corev1.EventTypeWarning, reason, message)
	st := corev1.PodStatus{Phase: corev1.PodFailed, Reason: reason, Message: "Pod was rejected: " + message,
		HostIP: p.cfg.PodIP, HostIPs: []corev1.HostIP{{IP: p.cfg.PodIP}}, StartTime: pod.Status.StartTime}
	if st.StartTime == nil {
		st.StartTime = &metav1.Time{Time: rec.start}
	}
	p.publish(p.store.setStatus(pod.UID, st))
}

// publishStatus computes the pod's status and hands it to virtual-kubelet when it changed,
// unless holdTerminal holds it back: then it returns how soon to look again.
func (p *Worker) publishStatus(ctx context.Context, rec *podRecord, pod *corev1.Pod, obs observation, terminal bool) time.Duration {
	in := obs.statusInput(pod, rec.waiting)
	in.HostIP, in.Start, in.Terminal = p.cfg.PodIP, rec.start, terminal
	in.Health, in.Others = p.probes.Health(pod, obs.containers), p.otherConditions(pod)
	st := status.Generate(in)
	if !terminal {
		sandboxReady := obs.sandbox != nil && obs.sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY
		if wait := holdTerminal(ctx, rec, st.Phase, sandboxReady); wait > 0 {
			return wait
		}
	}
	if apiequality.Semantic.DeepEqual(st, pod.Status) {
		return 0
	}
	p.publish(p.store.setStatus(pod.UID, st))
	return 0
}

// observe reads the pod's sandbox and containers from the host. Exited containers are read
// once: their status no longer changes.
func (p *Worker) observe(ctx context.Context, rec *podRecord, pod *corev1.Pod) (observation, error) {
	obs := observation{containers: map[string][]*runtimeapi.ContainerStatus{}, inCurrent: map[string]bool{}}
	sel := map[string]string{kuberuntime.LabelPodUID: string(pod.UID), kuberuntime.LabelNode: p.cfg.NodeName}
	sbs, err := p.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return obs, err
	}
	sb := currentSandbox(sbs.Items)
	if sb == nil {
		return obs, nil
	}
	obs.sandbox = &runtimeapi.PodSandboxStatus{Id: sb.Id, Metadata: sb.Metadata, State: sb.State, CreatedAt: sb.CreatedAt}
	for _, s := range sbs.Items {
		if s.Id != sb.Id {
			if obs.oldSandboxes == nil {
				obs.oldSandboxes = map[string]int{}
			}
			obs.oldSandboxes[s.Id] = 0
		}
	}
	// Every container of the pod, in whichever of its sandboxes: after a sandbox was replaced
	// the old one's containers are the last instances.
	ctrs, err := p.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return obs, err
	}
	for _, c := range ctrs.Containers {
		if _, old := obs.oldSandboxes[c.PodSandboxId]; old {
			obs.oldSandboxes[c.PodSandboxId]++
		} else {
			obs.inCurrent[c.Id] = true
		}
		st, err := p.containerStatus(ctx, rec, c)
		if errors.Is(err, remote.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return obs, err
		}
		name := c.GetMetadata().GetName()
		obs.containers[name] = append(obs.containers[name], st)
	}
	for _, h := range obs.containers {
		status.SortHistory(h)
	}
	return obs, nil
}

func (p *Worker) containerStatus(ctx context.Context, rec *podRecord, c *runtimeapi.Container) (*runtimeapi.ContainerStatus, error) {
	if st, ok := rec.exited[c.Id]; ok {
		return st, nil
	}
	resp, err := p.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
	if err != nil {
		return nil, err
	}
	st := resp.GetStatus()
	if st == nil {
		return nil, remote.ErrNotFound
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED && p.logs.AddTerminationMessage(ctx, st) {
		rec.exited[c.Id] = st // final, termination message included
	}
	return st, nil
}

// currentSandbox is the ready sandbox with the highest attempt, else the newest one.
func currentSandbox(items []*runtimeapi.PodSandbox) *runtimeapi.PodSandbox {
	var best *runtimeapi.PodSandbox
	for _, s := range items {
		switch {
		case best == nil:
			best = s
		case (s.State == runtimeapi.PodSandboxState_SANDBOX_READY) != (best.State == runtimeapi.PodSandboxState_SANDBOX_READY):
			if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				best = s
			}
		case s.GetMetadata().GetAttempt() > best.GetMetadata().GetAttempt(),
			s.GetMetadata().GetAttempt() == best.GetMetadata().GetAttempt() && s.CreatedAt > best.CreatedAt:
			best = s
		}
	}
	return best
}
