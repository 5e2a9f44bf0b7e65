package provider

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
// once start is called; stop cancels every worker and waits for them.
type workers struct {
	sync syncFunc

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
			return
		case <-c:
		case <-timer.C:
		}
		again, gone := w.sync(ctx, uid)
		if gone {
			w.mu.Lock()
			if w.wakeup[uid] == c {
				delete(w.wakeup, uid)
			}
			w.mu.Unlock()
			return
		}
		timer.Stop()
		if again > 0 {
			timer.Reset(again)
		}
	}
}
