package podworker

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/network"
	"github.com/satellite-vk/satellite/provider/status"
)

// podRecord is Satellite's memory of one pod. The fields under "shared" are guarded by the
// store's mutex; the rest belong to the pod's worker alone.
type podRecord struct {
	// shared
	pod       *corev1.Pod // spec and metadata as last given, with the last published status
	deleting  bool
	grace     int64         // seconds, when deleting
	since     time.Time     // when deleting: since when
	gone      chan struct{} // closed once deleting
	stopped   chan struct{} // closed once its containers are stopped (markStopped) or it is removed
	isStopped bool
	// portsAdmitted is set once the pod's ports were admitted (admitPorts): it keeps them
	// from any pod that comes later, whatever its age.
	portsAdmitted bool

	// worker-private
	start   time.Time
	waiting map[string]status.Waiting              // by container name
	exited  map[string]*runtimeapi.ContainerStatus // final statuses of exited containers, by id
	// terminalHeld is since when a terminal status waits for the pod's sandbox to be seen
	// stopped (holdTerminal).
	terminalHeld time.Time

	rejected string // why the pod cannot run here (admission), once decided
	// relayError is why some of the pod's ports are not relayed, last reported ("" if none).
	relayError string
}

// store holds the pods bound to this node. Returned pods are deep copies.
type store struct {
	mu    sync.Mutex
	byUID map[types.UID]*podRecord
	byKey map[string]types.UID
}

func newStore() *store {
	return &store{byUID: map[types.UID]*podRecord{}, byKey: map[string]types.UID{}}
}

func key(namespace, name string) string { return namespace + "/" + name }

// put records a pod's spec (from CreatePod or UpdatePod), keeping the status published so far.
func (s *store) put(pod *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pod = pod.DeepCopy()
	if rec, ok := s.byUID[pod.UID]; ok {
		pod.Status = rec.pod.Status
		rec.pod = pod
		return
	}
	s.byUID[pod.UID] = &podRecord{
		pod:     pod,
		gone:    make(chan struct{}),
		stopped: make(chan struct{}),
		start:   time.Now(),
		waiting: map[string]status.Waiting{},
		exited:  map[string]*runtimeapi.ContainerStatus{},
	}
	s.byKey[key(pod.Namespace, pod.Name)] = pod.UID
}

// markDeleting asks for the pod to be killed with the given grace period. It reports false
// when the pod is unknown.
func (s *store) markDeleting(uid types.UID, grace int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byUID[uid]
	if !ok {
		return false
	}
	if !rec.deleting || grace < rec.grace {
		rec.grace = grace
	}
	if !rec.deleting {
		close(rec.gone)
		rec.since = time.Now()
	}
	rec.deleting = true
	return true
}

// shortenDeletion lowers the grace period of a pod being deleted to what is left of it, and
// to at most limit. It reports whether the pod is being deleted.
func (s *store) shortenDeletion(uid types.UID, limit time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byUID[uid]
	if !ok || !rec.deleting {
		return false
	}
	left := time.Duration(rec.grace)*time.Second - time.Since(rec.since)
	rec.grace = int64(min(max(left, 0), limit) / time.Second)
	return true
}

// deleted is closed once the pod is marked for deletion (at once for a pod not known).
func (s *store) deleted(uid types.UID) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.byUID[uid]; ok {
		return rec.gone
	}
	c := make(chan struct{})
	close(c)
	return c
}

func (s *store) remove(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.byUID[uid]; ok {
		k := key(rec.pod.Namespace, rec.pod.Name)
		if s.byKey[k] == uid {
			delete(s.byKey, k)
		}
		delete(s.byUID, uid)
		rec.markStopped()
	}
}

// markStopped records that the pod's containers are stopped.
func (s *store) markStopped(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.byUID[uid]; ok {
		rec.markStopped()
	}
}

func (rec *podRecord) markStopped() {
	if !rec.isStopped {
		rec.isStopped = true
		close(rec.stopped)
	}
}

// stoppedChan is closed once the pod's containers are stopped (at once for a pod not known).
func (s *store) stoppedChan(uid types.UID) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.byUID[uid]; ok {
		return rec.stopped
	}
	c := make(chan struct{})
	close(c)
	return c
}

// record returns the worker's record and a copy of the shared fields.
func (s *store) record(uid types.UID) (rec *podRecord, pod *corev1.Pod, deleting bool, grace int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byUID[uid]
	if !ok {
		return nil, nil, false, 0
	}
	return rec, rec.pod.DeepCopy(), rec.deleting, rec.grace
}

// setStatus stores a newly published status and returns the pod to publish.
func (s *store) setStatus(uid types.UID, st corev1.PodStatus) *corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byUID[uid]
	if !ok {
		return nil
	}
	rec.pod.Status = st
	return rec.pod.DeepCopy()
}

func (s *store) get(namespace, name string) *corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byUID[s.byKey[key(namespace, name)]]
	if !ok {
		return nil
	}
	return rec.pod.DeepCopy()
}

func (s *store) list() []*corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(s.byUID))
	for _, rec := range s.byUID {
		out = append(out, rec.pod.DeepCopy())
	}
	return out
}

// matching lists the pods for which f holds; f is given each pod as last published, under the
// store's lock, and must neither keep nor change it.
func (s *store) matching(f func(*corev1.Pod) bool) []types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []types.UID
	for uid, rec := range s.byUID {
		if f(rec.pod) {
			out = append(out, uid)
		}
	}
	return out
}

func (s *store) uids() []types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]types.UID, 0, len(s.byUID))
	for uid := range s.byUID {
		out = append(out, uid)
	}
	return out
}

func (s *store) has(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byUID[uid]
	return ok
}

func (s *store) phases() map[corev1.PodPhase]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[corev1.PodPhase]int{}
	for _, rec := range s.byUID {
		phase := rec.pod.Status.Phase
		if phase == "" {
			phase = corev1.PodPending
		}
		out[phase]++
	}
	return out
}

// portHolders lists the pods whose ports pod must not take: those already admitted, and
// older ones not decided yet (f tells which of them may hold ports at all).
func (s *store) portHolders(pod *corev1.Pod, f func(*corev1.Pod) bool) []*corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*corev1.Pod
	for uid, rec := range s.byUID {
		if uid != pod.UID && f(rec.pod) && (rec.portsAdmitted || network.Before(rec.pod, pod)) {
			out = append(out, rec.pod.DeepCopy())
		}
	}
	return out
}

// admitPorts records that the pod's ports were admitted; false if it was already.
func (s *store) admitPorts(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byUID[uid]
	if !ok || rec.portsAdmitted {
		return false
	}
	rec.portsAdmitted = true
	return true
}

// portsAdmittedFor tells whether the pod's ports were admitted.
func (s *store) portsAdmittedFor(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byUID[uid]
	return ok && rec.portsAdmitted
}
