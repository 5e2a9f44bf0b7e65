package podworker

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A pod being deleted when the workers stop has its deletion finished with a live context;
// any other pod's worker stops at once.
func TestWorkersFinishDeletionsOnStop(t *testing.T) {
	var mu sync.Mutex
	syncs := map[types.UID][]bool{} // per pod: whether each sync's context was live
	entered := make(chan types.UID, 4)
	w := newWorkers(nil)
	w.finishWithin = 5 * time.Second
	w.finishing = func(uid types.UID) bool { return uid == "deleting" }
	w.sync = func(ctx context.Context, uid types.UID) (time.Duration, bool) {
		select {
		case entered <- uid:
		default:
		}
		mu.Lock()
		n := len(syncs[uid])
		mu.Unlock()
		if n == 0 {
			<-ctx.Done()
		}
		mu.Lock()
		defer mu.Unlock()
		syncs[uid] = append(syncs[uid], ctx.Err() == nil)
		if ctx.Err() != nil {
			return retryAfterError, false // the host call was cut by stop
		}
		return 0, true
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	w.wake("deleting")
	w.wake("running")
	for range 2 {
		<-entered
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("workers did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if got := syncs["deleting"]; len(got) != 2 || got[0] || !got[1] {
		t.Errorf("deleting pod's syncs (context live?): %v, want [false true]: cut by stop, then finished", got)
	}
	if got := syncs["running"]; len(got) != 1 {
		t.Errorf("running pod's syncs: %v, want only the one cut by stop", got)
	}
	if _, ok := w.wakeup["deleting"]; ok {
		t.Error("the finished pod's worker is still registered")
	}
}

// A deletion finished on stop keeps at most what is left of its grace period.
func TestShortenDeletion(t *testing.T) {
	s := newStore()
	pod := testPod(corev1.RestartPolicyAlways, nil, "a")
	pod.UID, pod.Namespace, pod.Name = "u1", "ns", "p"
	s.put(pod)
	if s.shortenDeletion(pod.UID, 10*time.Second) {
		t.Fatal("a pod not being deleted reported as being deleted")
	}
	s.markDeleting(pod.UID, 30)
	if !s.shortenDeletion(pod.UID, 10*time.Second) {
		t.Fatal("a pod being deleted reported as not")
	}
	if _, _, _, g := s.record(pod.UID); g != 10 {
		t.Errorf("grace %d after shortening a 30 s one to 10 s, want 10", g)
	}
	s.markDeleting(pod.UID, 3)
	s.shortenDeletion(pod.UID, 10*time.Second)
	if _, _, _, g := s.record(pod.UID); g > 3 {
		t.Errorf("grace %d after shortening a 3 s one to 10 s, want at most 3", g)
	}
}
