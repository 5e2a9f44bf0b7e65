package prober

import (
	"context"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
)

// restartGrace is how long before Satellite started a container must have started to count as
// adopted from an earlier run (the kubelet's kubeletRestartGracePeriod).
const restartGrace = 10 * time.Second

// PodLister reads pods as the API has them (virtual-kubelet's informer).
type PodLister interface {
	Pods(namespace string) corev1listers.PodNamespaceLister
}

// Config is what a Manager needs.
type Config struct {
	Runtime Runtime // runs exec probes
	Dialer  Dialer  // opens the connections of httpGet, tcpSocket and grpc probes
	PodIP   string  // the pods' IP: the host's
	// Recorder records the kubelet's Unhealthy and ProbeWarning events.
	Recorder record.EventRecorder
	// Pods, when set, gives containers' env as the API has it, for the $(VAR) expansion of
	// exec probe commands.
	Pods PodLister
	// Notify wakes the pod's worker when a result of one of its containers changed.
	Notify func(types.UID)
}

// Manager runs the probes of the pods' running containers and keeps their results: the
// kubelet's prober manager. Each probe of each running container instance has one worker
// goroutine, started by Sync and stopped when that instance is no longer the pod's running
// one, when the pod is forgotten (Forget) or when Run ends. A result that changes calls
// Notify, whose caller reads them (Health, KillReason).
type Manager struct {
	runner   runner
	recorder record.EventRecorder
	notify   func(types.UID)
	pods     PodLister
	start    time.Time

	base   context.Context // parent of every worker's context; ended by Run
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	byPod  map[types.UID]*podProbes
	wg     sync.WaitGroup
}

// podProbes is one pod's probe workers and results.
type podProbes struct {
	workers map[probeKey]*worker
	results map[string]*[3]result // by container id, indexed by kind
}

type probeKey struct {
	container string
	kind      kind
}

// NewManager makes a Manager; Run stops its workers.
func NewManager(cfg Config) *Manager {
	base, cancel := context.WithCancel(context.Background())
	return &Manager{
		runner:   runner{cri: cfg.Runtime, host: cfg.Dialer, podIP: cfg.PodIP},
		recorder: cfg.Recorder, notify: cfg.Notify, pods: cfg.Pods, start: time.Now(),
		base: base, cancel: cancel, byPod: map[types.UID]*podProbes{},
	}
}

// Run returns once ctx has ended and every probe worker has stopped.
func (m *Manager) Run(ctx context.Context) {
	<-ctx.Done()
	m.mu.Lock()
	m.closed = true
	m.byPod = map[types.UID]*podProbes{}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// Sync gives the pod's running containers their probe workers, from containers (every CRI
// instance by container name, newest first), and stops the workers of container instances
// that no longer run. A new instance starts with the kubelet's initial results: not ready,
// live, not started. An instance adopted from an earlier run of Satellite keeps what the pod's
// status said of it (started, and ready when the pod was Ready) until its probes say
// otherwise, as the kubelet does after a restart.
func (m *Manager) Sync(ctx context.Context, pod *corev1.Pod, containers map[string][]*runtimeapi.ContainerStatus) {
	want := wanted(pod, containers)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	pp := m.byPod[pod.UID]
	if pp == nil {
		if len(want) == 0 {
			m.mu.Unlock()
			return
		}
		pp = &podProbes{workers: map[probeKey]*worker{}, results: map[string]*[3]result{}}
		m.byPod[pod.UID] = pp
	}
	var stopped []*worker
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
		delete(m.byPod, pod.UID)
	}
	m.mu.Unlock()
	stopWorkers(stopped)
}

// wanted is the running instance each probe of the pod's containers is to run against.
func wanted(pod *corev1.Pod, containers map[string][]*runtimeapi.ContainerStatus) map[probeKey]*runtimeapi.ContainerStatus {
	want := map[probeKey]*runtimeapi.ContainerStatus{}
	for _, c := range kubecontainer.LongRunning(pod) {
		h := containers[c.Name]
		if len(h) == 0 || h[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		for _, k := range []kind{startup, readiness, liveness} {
			if k.spec(c) != nil {
				want[probeKey{c.Name, k}] = h[0]
			}
		}
	}
	return want
}

// initialResults are a new container instance's results before any probe has run.
func (m *Manager) initialResults(pod *corev1.Pod, name string, st *runtimeapi.ContainerStatus) *[3]result {
	r := &[3]result{readiness: resultFailure, liveness: resultSuccess}
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
func (m *Manager) launch(ctx context.Context, pod *corev1.Pod, k probeKey, st *runtimeapi.ContainerStatus) *worker {
	c := kubecontainer.FindLongRunning(pod, k.container).DeepCopy()
	spec := k.kind.spec(c)
	w := &worker{m: m, kind: k.kind, spec: spec, pod: pod.DeepCopy(), container: c, id: st.Id,
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

// Forget stops the pod's probe workers and forgets its results.
func (m *Manager) Forget(uid types.UID) {
	m.mu.Lock()
	pp := m.byPod[uid]
	delete(m.byPod, uid)
	m.mu.Unlock()
	if pp == nil {
		return
	}
	ws := make([]*worker, 0, len(pp.workers))
	for _, w := range pp.workers {
		ws = append(ws, w)
	}
	stopWorkers(ws)
}

func stopWorkers(ws []*worker) {
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
}
