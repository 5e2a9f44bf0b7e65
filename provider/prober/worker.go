package prober

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
)

// maxProbeRetries is how often the kubelet runs a probe whose action errs before giving up on
// that period (pkg/kubelet/prober/prober.go).
const maxProbeRetries = 3

// counter counts equal results in a row: a result is recorded only once it has come
// successThreshold (or failureThreshold) times running, as in the kubelet's doProbe.
type counter struct {
	last result
	run  int
}

// observe counts r and reports whether it is to be recorded.
func (c *counter) observe(r result, successThreshold, failureThreshold int32) bool {
	if c.last == r {
		c.run++
	} else {
		c.last, c.run = r, 1
	}
	threshold := successThreshold
	if r == resultFailure {
		threshold = failureThreshold
	}
	return c.run >= int(max(threshold, 1))
}

// worker runs one probe of one container instance, every periodSeconds, until it is
// stopped (the container is no longer the pod's running instance, the pod is deleted, or
// Satellite stops): the kubelet's prober worker (pkg/kubelet/prober/worker.go).
type worker struct {
	m         *Manager
	kind      kind
	spec      *corev1.Probe
	pod       *corev1.Pod       // read-only
	container *corev1.Container // read-only
	id        string            // CRI container id
	startedAt time.Time
	command   []string // an exec probe's command, expanded

	trigger chan struct{} // asks for a probe now (buffered, one)
	cancel  context.CancelFunc
	done    chan struct{}

	// the worker goroutine's own
	counter counter
	onHold  bool
}

// run probes every period, or at once when triggered, until ctx ends. The first probe comes
// a period after the instance was seen running, not at once: the kubelet's worker probes only
// on its ticks, and sees a new instance only once its status shows it running (after a PLEG
// relist), so a container is never probed in the moment it starts, before its server can
// listen. (A readiness probe is still run at once, triggered as the kubelet's UpdatePodStatus
// triggers it: see Health.)
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	period := time.Duration(w.spec.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	first := period
	// Right after Satellite starts, adopted containers would all be probed at once: spread
	// the first probes over one period, as the kubelet does after its own restart.
	if since := time.Since(w.m.start); period > since {
		first = max(time.Duration(rand.Float64()*float64(period)), time.Millisecond)
	}
	ticker := time.NewTicker(first)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-w.trigger:
		}
		ticker.Reset(period)
		w.probe(ctx)
	}
}

// probe runs the probe once, if it is due, and records the result once its threshold is met.
func (w *worker) probe(ctx context.Context) {
	if w.onHold || int32(time.Since(w.startedAt).Seconds()) < w.spec.InitialDelaySeconds {
		return
	}
	// The startup probe runs until the container has started; the others only after.
	if w.m.started(w.pod.UID, w.container, w.id) == (w.kind == startup) {
		return
	}
	r, ok := w.runWithRetries(ctx)
	if !ok || ctx.Err() != nil {
		return // the kubelet throws away a result it could not get
	}
	if !w.counter.observe(r, w.spec.SuccessThreshold, w.spec.FailureThreshold) {
		return
	}
	w.m.set(w.pod.UID, w.id, w.kind, r)
	if (w.kind == liveness && r == resultFailure) || w.kind == startup {
		// The container is killed, or has started: nothing more to learn from it.
		w.onHold = true
		w.counter = counter{}
	}
}

// runWithRetries runs the probe's action, again up to maxProbeRetries times while it errs, and
// records the kubelet's events: Unhealthy for a failure or an error, ProbeWarning for a
// warning. ok is false when no result could be had.
func (w *worker) runWithRetries(ctx context.Context) (result, bool) {
	var (
		outcome outcome
		output  string
		err     error
	)
	for range maxProbeRetries {
		if outcome, output, err = w.m.runner.run(ctx, w.spec, w.container, w.id, w.command); err == nil {
			break
		}
	}
	ref := kubecontainer.Ref(w.pod, w.container.Name)
	switch {
	case ctx.Err() != nil:
		return resultNone, false
	case err != nil:
		log.G(ctx).WithError(err).WithField("container", w.container.Name).Debugf("%s probe errored", w.kind)
		w.m.recorder.Eventf(ref, corev1.EventTypeWarning, "Unhealthy", "%s probe errored and resulted in unknown state: %s", w.kind, err)
		return resultNone, false
	case outcome == outcomeWarning:
		w.m.recorder.Eventf(ref, corev1.EventTypeWarning, "ProbeWarning", "%s probe warning: %s", w.kind, output)
		return resultSuccess, true
	case outcome == outcomeFailure:
		log.G(ctx).WithField("container", w.container.Name).Debugf("%s probe failed", w.kind)
		w.m.recorder.Eventf(ref, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", w.kind, output)
		return resultFailure, true
	}
	return resultSuccess, true
}
