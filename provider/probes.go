package provider

import (
	"context"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// restartGrace is how long before Satellite started a container must have started to count as
// adopted from an earlier run (the kubelet's kubeletRestartGracePeriod).
const restartGrace = 10 * time.Second

// probeManager runs the probes of the pods' running containers and keeps their results: the
// kubelet's prober manager. Each probe of each running container instance has one worker
// goroutine, started by the pod's worker (sync) and stopped when that instance is no longer
// the pod's running one, when the pod is deleted (stopPod) or when Satellite stops (run).
// A result that changes wakes the pod's worker, which reads them (health, killReason).
type probeManager struct {
	prober   prober
	recorder record.EventRecorder
	wake     func(types.UID)
	// apiEnv returns a container's env as the API has it (not resolved by virtual-kubelet),
	// for the $(VAR) expansion of exec probe commands.
	apiEnv func(pod *corev1.Pod, container string) []corev1.EnvVar
	start  time.Time

	base   context.Context // parent of every worker's context; ended by run
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	pods   map[types.UID]*podProbes
	wg     sync.WaitGroup
}

// podProbes is one pod's probe workers and results.
type podProbes struct {
	workers map[probeKey]*probeWorker
	results map[string]*[3]probeResult // by container id, indexed by probeKind
}

type probeKey struct {
	container string
	kind      probeKind
}

func newProbeManager(pr prober, recorder record.EventRecorder, wake func(types.UID), apiEnv func(*corev1.Pod, string) []corev1.EnvVar) *probeManager {
	base, cancel := context.WithCancel(context.Background())
	return &probeManager{prober: pr, recorder: recorder, wake: wake, apiEnv: apiEnv, start: time.Now(),
		base: base, cancel: cancel, pods: map[types.UID]*podProbes{}}
}

// run returns once ctx has ended and every probe worker has stopped.
func (m *probeManager) run(ctx context.Context) {
	<-ctx.Done()
	m.mu.Lock()
	m.closed = true
	m.pods = map[types.UID]*podProbes{}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// sync gives the pod's running containers their probe workers, as observed, and stops the
// workers of container instances that no longer run. A new instance starts with the kubelet's
// initial results: not ready, live, not started. An instance adopted from an earlier run of
// Satellite keeps what the pod's status said of it (started, and ready when the pod was
// Ready) until its probes say otherwise, as the kubelet does after a restart.
func (m *probeManager) sync(ctx context.Context, pod *corev1.Pod, obs observation) {
	want := map[probeKey]*runtimeapi.ContainerStatus{}
	for _, c := range probedContainers(pod) {
		h := obs.containers[c.Name]
		if len(h) == 0 || h[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		for _, k := range []probeKind{startup, readiness, liveness} {
			if k.spec(c) != nil {
				want[probeKey{c.Name, k}] = h[0]
			}
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	pp := m.pods[pod.UID]
	if pp == nil {
		if len(want) == 0 {
			m.mu.Unlock()
			return
		}
		pp = &podProbes{workers: map[probeKey]*probeWorker{}, results: map[string]*[3]probeResult{}}
		m.pods[pod.UID] = pp
	}
	var stopped []*probeWorker
	for k, w := range pp.workers {
		if st, ok := want[k]; !ok || st.Id != w.id {
			stopped = append(stopped, w)
			delete(pp.workers, k)
		}
	}
	live := map[string]bool{}
	for k, st := range want {
		live[st.Id] = true
		if _, ok := pp.workers[k]; ok {
			continue
		}
		if pp.results[st.Id] == nil {
			pp.results[st.Id] = m.initialResults(pod, k.container, st)
		}
		pp.workers[k] = m.launch(ctx, pod, k, st)
	}
	for id := range pp.results {
		if !live[id] {
			delete(pp.results, id)
		}
	}
	if len(pp.workers) == 0 {
		delete(m.pods, pod.UID)
	}
	m.mu.Unlock()
	stopWorkers(stopped)
}

// initialResults are a new container instance's results before any probe has run.
func (m *probeManager) initialResults(pod *corev1.Pod, name string, st *runtimeapi.ContainerStatus) *[3]probeResult {
	r := &[3]probeResult{readiness: resultFailure, liveness: resultSuccess}
	if !time.Unix(0, st.StartedAt).Before(m.start.Add(-restartGrace)) {
		return r
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == name && cs.ContainerID == "containerd://"+st.Id && cs.Started != nil && *cs.Started {
			r[startup] = resultSuccess
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			r[readiness] = resultSuccess
		}
	}
	return r
}

// launch starts one worker; m.mu is held.
func (m *probeManager) launch(ctx context.Context, pod *corev1.Pod, k probeKey, st *runtimeapi.ContainerStatus) *probeWorker {
	c := specContainer(pod, k.container).DeepCopy()
	spec := k.kind.spec(c)
	w := &probeWorker{m: m, kind: k.kind, spec: spec, pod: pod.DeepCopy(), container: c, id: st.Id,
		startedAt: time.Unix(0, st.StartedAt), trigger: make(chan struct{}, 1), done: make(chan struct{})}
	if spec.Exec != nil {
		w.command = expandCommand(spec.Exec.Command, m.apiEnv(pod, c.Name))
	}
	wctx, cancel := context.WithCancel(log.WithLogger(m.base, log.G(ctx).WithField("container", c.Name)))
	w.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(wctx)
	}()
	return w
}

// stopPod stops the pod's probe workers and forgets its results.
func (m *probeManager) stopPod(uid types.UID) {
	m.mu.Lock()
	pp := m.pods[uid]
	delete(m.pods, uid)
	m.mu.Unlock()
	if pp == nil {
		return
	}
	ws := make([]*probeWorker, 0, len(pp.workers))
	for _, w := range pp.workers {
		ws = append(ws, w)
	}
	stopWorkers(ws)
}

func stopWorkers(ws []*probeWorker) {
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
}

// set records a worker's result and wakes the pod's worker when it changed.
func (m *probeManager) set(uid types.UID, id string, k probeKind, r probeResult) {
	m.mu.Lock()
	var changed bool
	if pp := m.pods[uid]; pp != nil {
		if rs := pp.results[id]; rs != nil && rs[k] != r {
			rs[k], changed = r, true
		}
	}
	m.mu.Unlock()
	if changed {
		m.wake(uid)
	}
}

// result is the recorded result of one probe of one container instance.
func (m *probeManager) result(uid types.UID, id string, k probeKind) probeResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pp := m.pods[uid]; pp != nil {
		if rs := pp.results[id]; rs != nil {
			return rs[k]
		}
	}
	return resultNone
}

// started reports whether the container instance has started: it has no startup probe, or
// its startup probe has succeeded.
func (m *probeManager) started(uid types.UID, c *corev1.Container, id string) bool {
	return c.StartupProbe == nil || m.result(uid, id, startup) == resultSuccess
}

// killReason is which probe condemns the running container instance ("liveness" or
// "startup", the kubelet's order), or "" when none does.
func (m *probeManager) killReason(uid types.UID, id string) string {
	switch {
	case m.result(uid, id, liveness) == resultFailure:
		return "liveness"
	case m.result(uid, id, startup) == resultFailure:
		return "startup"
	}
	return ""
}

// health is the started and ready state of the pod's running containers that have probes,
// by container name; containers without probes are not in it (started and ready while they
// run). A started container whose readiness probe has not yet succeeded is probed at once, as
// the kubelet's UpdatePodStatus asks for.
func (m *probeManager) health(pod *corev1.Pod, obs observation) map[string]containerHealth {
	out := map[string]containerHealth{}
	for _, c := range probedContainers(pod) {
		h := obs.containers[c.Name]
		if !hasProbes(c) || len(h) == 0 || h[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		id := h[0].Id
		ch := healthOf(c, id, m.result(pod.UID, id, startup), m.result(pod.UID, id, readiness))
		if ch.started && !ch.ready {
			m.triggerReadiness(pod.UID, c.Name)
		}
		out[c.Name] = ch
	}
	return out
}

// healthOf is the kubelet's started and ready for a running container from its results: not
// started until a startup probe succeeds; not ready before it has started, nor until a
// readiness probe succeeds; without those probes, started and ready.
func healthOf(c *corev1.Container, id string, startupResult, readinessResult probeResult) containerHealth {
	h := containerHealth{id: id, started: c.StartupProbe == nil || startupResult == resultSuccess}
	h.ready = h.started && (c.ReadinessProbe == nil || readinessResult == resultSuccess)
	return h
}

func (m *probeManager) triggerReadiness(uid types.UID, container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pp := m.pods[uid]; pp != nil {
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

// specContainer is the pod's probed container of that name (a regular container or a
// sidecar), nil when there is none.
func specContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range probedContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// probedContainers are the containers whose probes run: the sidecars and the regular
// containers (the kubelet probes no other init container).
func probedContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			out = append(out, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// containerHealth is what a running container instance's probes say of it.
type containerHealth struct {
	id             string // CRI container id
	started, ready bool
}

// applyHealth sets the started and ready of running containers from their probes; the
// others keep what their CRI state says.
func applyHealth(ss []corev1.ContainerStatus, health map[string]containerHealth, terminal bool) {
	for i := range ss {
		h, ok := health[ss[i].Name]
		if !ok || ss[i].State.Running == nil || ss[i].ContainerID != "containerd://"+h.id {
			continue
		}
		started := h.started
		ss[i].Started = &started
		ss[i].Ready = h.ready && !terminal
	}
}

// apiEnv is the container's env as the API has it: virtual-kubelet hands over env already
// resolved (Secrets included), which the kubelet's expansion of probe commands never sees.
func (p *Provider) apiEnv(pod *corev1.Pod, container string) []corev1.EnvVar {
	if p.lister == nil {
		return nil
	}
	api, err := p.lister.Pods(pod.Namespace).Get(pod.Name)
	if err != nil || api.UID != pod.UID {
		return nil
	}
	if c := specContainer(api, container); c != nil {
		return c.Env
	}
	return nil
}
