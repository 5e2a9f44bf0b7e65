package podworker

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestCrashLoop(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := clocktesting.NewFakeClock(t0)
	b := newCrashLoop(clock)
	// wait is how long the container must still wait at now, having exited at exit.
	wait := func(exit, now time.Time) time.Duration {
		clock.SetTime(now)
		return b.wait("p/c", exit)
	}
	next := func(now time.Time) {
		clock.SetTime(now)
		b.next("p/c")
	}
	if w := wait(t0, t0); w != 0 {
		t.Fatalf("first try waits %v, want 0", w)
	}
	next(t0)
	// Exits 1 s after the first restart: waits the remaining 10 s from its exit.
	exit := t0.Add(time.Second)
	if w := wait(exit, exit.Add(2*time.Second)); w != 8*time.Second {
		t.Fatalf("wait = %v, want 8s", w)
	}
	now := exit.Add(10 * time.Second)
	if w := wait(exit, now); w != 0 {
		t.Fatalf("after the delay wait = %v, want 0", w)
	}
	want := []time.Duration{20, 40, 80, 160, 300, 300}
	for _, d := range want {
		next(now)
		if w := wait(now, now); w != d*time.Second {
			t.Fatalf("wait = %v, want %v", w, d*time.Second)
		}
		now = now.Add(d * time.Second)
	}
	// After more than twice the maximum without a try, it starts over.
	later := now.Add(11 * time.Minute)
	if w := wait(later, later); w != 0 {
		t.Fatalf("after reset wait = %v, want 0", w)
	}
	next(later)
	if w := wait(later, later); w != 10*time.Second || b.delay("p/c") != 10*time.Second {
		t.Fatalf("after reset next wait = %v (delay %v), want 10s", w, b.delay("p/c"))
	}
	b.forget(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}})
	if w := wait(later, later); w != 0 {
		t.Fatalf("after forget wait = %v, want 0", w)
	}
}
