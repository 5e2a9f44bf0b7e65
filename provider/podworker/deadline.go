package podworker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/status"
	"github.com/satellite-vk/satellite/remote"
)

// activeDeadlineSeconds is enforced as the kubelet's active deadline handler does
// (pkg/kubelet/active_deadline.go): once the pod has been active for that long since its start
// time, it fails with reason DeadlineExceeded, a Normal event of the same reason, and its
// containers are killed as the kubelet kills them (preStop hook, then SIGTERM and SIGKILL
// within the pod's grace period). Nothing is started or probed again; containers and logs
// stay until the pod is deleted.

const (
	reasonDeadline  = "DeadlineExceeded"
	messageDeadline = "Pod was active on the node longer than the specified deadline"
)

// deadlineLeft is how long the pod may still be active; ok is false when no deadline applies:
// none is set, or the pod finished on its own first.
func deadlineLeft(pod *corev1.Pod, start, now time.Time) (left time.Duration, ok bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil {
		return 0, false
	}
	if ph := pod.Status.Phase; (ph == corev1.PodSucceeded || ph == corev1.PodFailed) && pod.Status.Reason != reasonDeadline {
		return 0, false
	}
	if st := pod.Status.StartTime; st != nil && !st.IsZero() {
		start = st.Time // the start the API has, which outlives a restart of Satellite
	}
	return start.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second).Sub(now), true
}

// pastDeadline reports whether the pod has outlived its active deadline.
func pastDeadline(rec *podRecord, pod *corev1.Pod) bool {
	left, ok := deadlineLeft(pod, rec.start, time.Now())
	return ok && left <= 0
}

// wakeForDeadline shortens the time to the next sync to the pod's deadline.
func wakeForDeadline(rec *podRecord, pod *corev1.Pod, again time.Duration) time.Duration {
	left, ok := deadlineLeft(pod, rec.start, time.Now())
	if !ok {
		return again
	}
	left = max(left, time.Millisecond)
	if again == 0 || left < again {
		return left
	}
	return again
}

// failPastDeadline stops the pod's containers and sandbox and publishes it Failed.
func (p *Worker) failPastDeadline(ctx context.Context, rec *podRecord, pod *corev1.Pod) (time.Duration, bool) {
	if pod.Status.Reason != reasonDeadline {
		p.recorder.Event(pod, corev1.EventTypeNormal, reasonDeadline, messageDeadline)
	}
	p.probes.Forget(pod.UID)
	obs, err := p.observe(ctx, rec, pod)
	if err == nil {
		err = p.stopAll(ctx, pod, obs)
	}
	if err == nil {
		obs, err = p.observe(ctx, rec, pod)
	}
	if err != nil {
		log.G(ctx).WithError(err).Warn("cannot stop a pod past its active deadline; will try again")
		return retryAfterError, false
	}
	in := obs.statusInput(pod, rec.waiting)
	in.HostIP, in.Start, in.Terminal = p.cfg.PodIP, rec.start, true
	st := status.Generate(in)
	st.Phase, st.Reason, st.Message = corev1.PodFailed, reasonDeadline, messageDeadline
	if !apiequality.Semantic.DeepEqual(st, pod.Status) {
		p.publish(p.store.setStatus(pod.UID, st))
	}
	return 0, false
}

// stopAll kills the pod's running containers with its grace period, then stops its sandbox.
func (p *Worker) stopAll(ctx context.Context, pod *corev1.Pod, obs observation) error {
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	g, gctx := errgroup.WithContext(ctx)
	for name, h := range obs.containers {
		if len(h) == 0 || h[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		id := h[0].Id
		g.Go(func() error { return p.killContainer(gctx, pod, name, id, "Stopping container "+name, grace) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if sb := obs.sandbox; sb != nil && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		if _, err := p.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
			return fmt.Errorf("stop sandbox: %w", err)
		}
	}
	return nil
}
