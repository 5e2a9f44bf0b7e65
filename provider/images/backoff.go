package images

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

// The kubelet's image-pull back-off (pkg/kubelet/kubelet.go, imageBackOff): 10 s doubling
// to 5 min, forgotten once a container has not failed a pull for twice the maximum.
const (
	backOffInitial = 10 * time.Second
	backOffMax     = 5 * time.Minute
)

// failures are the containers' failed pulls, per pod: the back-off (client-go's, keyed by
// pod UID and container name) and the last error, which the ImagePullBackOff status shows.
type failures struct {
	backoff *flowcontrol.Backoff

	mu    sync.Mutex
	byUID map[types.UID]map[string]*failure // by container name
}

type failure struct {
	at      time.Time // the last failed pull
	message string    // its error; "" once a pull succeeded
}

func newFailures(clk clock.Clock) *failures {
	b := flowcontrol.NewBackOff(backOffInitial, backOffMax)
	b.Clock = clk
	return &failures{backoff: b, byUID: map[types.UID]map[string]*failure{}}
}

func backoffKey(uid types.UID, container string) string { return string(uid) + "/" + container }

// backingOff returns how much longer the container waits before its next pull (0: pull now)
// and the last pull's error.
func (f *failures) backingOff(uid types.UID, container string) (time.Duration, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.byUID[uid][container]
	if last == nil {
		return 0, ""
	}
	key := backoffKey(uid, container)
	now := f.backoff.Clock.Now()
	if !f.backoff.IsInBackOffSinceUpdate(key, now) {
		return 0, ""
	}
	return max(last.at.Add(f.backoff.Get(key)).Sub(now), time.Nanosecond), last.message
}

// failed records a failed pull and returns the back-off before the next.
func (f *failures) failed(uid types.UID, container, message string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := backoffKey(uid, container)
	now := f.backoff.Clock.Now()
	f.backoff.Next(key, now)
	if f.byUID[uid] == nil {
		f.byUID[uid] = map[string]*failure{}
	}
	f.byUID[uid][container] = &failure{at: now, message: message}
	return f.backoff.Get(key)
}

// pulled records a pull that succeeded: the error goes, the back-off stays until it expires,
// as the kubelet's does.
func (f *failures) pulled(uid types.UID, container string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if last := f.byUID[uid][container]; last != nil {
		last.message = ""
	}
}

// forget drops a pod's failures and back-off.
func (f *failures) forget(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for container := range f.byUID[uid] {
		f.backoff.DeleteEntry(backoffKey(uid, container))
	}
	delete(f.byUID, uid)
}
