package podworker

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Stopped, which the pod's API deletion waits for, closes once the containers are stopped or
// the pod is removed, and at once for a pod the store does not hold.
func TestStoppedChannel(t *testing.T) {
	s := newStore()
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	if !closed(s.stoppedChan("unknown")) {
		t.Error("a pod not held: not closed")
	}
	for _, removeIt := range []bool{false, true} {
		uid := "u-stop"
		if removeIt {
			uid = "u-remove"
		}
		s.put(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: uid, UID: types.UID(uid)}})
		c := s.stoppedChan(types.UID(uid))
		if closed(c) {
			t.Fatalf("%s: closed before anything was stopped", uid)
		}
		if removeIt {
			s.remove(types.UID(uid))
		} else {
			s.markStopped(types.UID(uid))
			s.markStopped(types.UID(uid)) // again: no double close
		}
		if !closed(c) {
			t.Errorf("%s: not closed", uid)
		}
	}
}
