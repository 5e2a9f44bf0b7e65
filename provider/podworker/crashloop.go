package podworker

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

// crashLoop is the kubelet's container restart back-off (kuberuntime's doBackOff, on
// client-go's flowcontrol.Backoff): 10 s doubling to 5 min, one entry per container of a pod;
// an entry is started over once its container has gone twice the maximum without a restart,
// so a container that ran 10 minutes starts over.
type crashLoop struct {
	backoff *flowcontrol.Backoff
}

const (
	crashLoopInitial = 10 * time.Second
	crashLoopMax     = 5 * time.Minute
)

func newCrashLoop(c clock.Clock) crashLoop {
	return crashLoop{backoff: flowcontrol.NewFakeBackOff(crashLoopInitial, crashLoopMax, c)}
}

// crashLoopKey names a container of a pod in the back-off.
func crashLoopKey(uid types.UID, name string) string { return string(uid) + "/" + name }

// wait returns how much longer the container key names, which exited at exit, must wait
// before it is restarted; 0 means now.
func (b crashLoop) wait(key string, exit time.Time) time.Duration {
	if !b.backoff.IsInBackOffSince(key, exit) {
		return 0
	}
	return max(b.backoff.Get(key)-b.backoff.Clock.Since(exit), 0)
}

// delay is the container's current back-off, for the CrashLoopBackOff message.
func (b crashLoop) delay(key string) time.Duration {
	return b.backoff.Get(key)
}

// next records a restart: the next wait doubles, up to the maximum.
func (b crashLoop) next(key string) {
	b.backoff.Next(key, b.backoff.Clock.Now())
}

// forget drops the entries of a pod's containers (a pod that is gone).
func (b crashLoop) forget(pod *corev1.Pod) {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			b.backoff.DeleteEntry(crashLoopKey(pod.UID, c.Name))
		}
	}
}
