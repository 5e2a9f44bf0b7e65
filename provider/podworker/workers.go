package podworker

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// syncFunc reconciles one pod. It returns when to run again without being woken (0: only
// when woken) and whether the pod is gone for good.
type syncFunc func(ctx context.Context, uid types.UID) (again time.Duration, gone bool)

// workers runs one goroutine per pod, so a slow pod (an image pull, a long grace period) never
// holds up another, and a pod's syncs never overlap. Wakes before start are kept and served
// once start is called; stop cancels every worker and waits for them. A worker whose pod is
// being deleted when stop comes first finishes that deletion (finish), so that a Satellite
// stopped just after the API let go of a pod does not leave the pod's containers and files
// on the host: virtual-kubelet removes a pod from the API once its grace period is over, even
// while its containers are still being stopped, and helm uninstall's drain stops Satellite as
// soon as the API has no pods of the node.
type workers struct {
	sync syncFunc
	// finishing tells whether the pod's worker must finish its sync before stopping (nil:
	// never), and readies the pod for it.
	finishing func(uid types.UID) bool
	// finishWithin bounds the syncs after stop.
	finishWithin time.Duration

	mu     sync.Mutex
	ctx    context.Context
	wakeup map[types.UID]chan struct{}
	wg     sync.WaitGroup
}

func newWorkers(f syncFunc) *workers {
	return &workers{sync: f, wakeup: map[types.UID]chan struct{}{}}
}

// wake asks the pod's worker to sync soon, starting the worker when there is none.
func (w *workers) wake(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.wakeup[uid]
	if !ok {
		c = make(chan struct{}, 1)
		w.wakeup[uid] = c
		if w.ctx != nil {
			w.launch(uid, c)
		}
	}
	select {
	case c <- struct{}{}:
	default: // a wake is already pending
	}
}

// run serves wakes until ctx ends, then waits for every worker to return.
func (w *workers) run(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	for uid, c := range w.wakeup {
		w.launch(uid, c)
	}
	w.mu.Unlock()
	<-ctx.Done()
	w.wg.Wait()
}

func (w *workers) launch(uid types.UID, c chan struct{}) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.loop(w.ctx, uid, c)
	}()
}

func (w *workers) loop(ctx context.Context, uid types.UID, c chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			w.finish(ctx, uid, c)
			return
		case <-c:
		case <-timer.C:
		}
		again, gone := w.sync(ctx, uid)
		if gone {
			w.forget(uid, c)
			return
		}
		timer.Stop()
		if again > 0 {
			timer.Reset(again)
		}
	}
}

// finish runs the syncs of a pod being deleted after stop, until the pod is gone from the
// host or finishWithin has passed.
func (w *workers) finish(stopped context.Context, uid types.UID, c chan struct{}) {
	if w.finishing == nil || !w.finishing(uid) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stopped), w.finishWithin)
	defer cancel()
	for {
		again, gone := w.sync(ctx, uid)
		if gone {
			w.forget(uid, c)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(again, 100*time.Millisecond)):
		}
	}
}

func (w *workers) forget(uid types.UID, c chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wakeup[uid] == c {
		delete(w.wakeup, uid)
	}
}
