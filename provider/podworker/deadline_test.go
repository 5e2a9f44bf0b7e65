package podworker

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDeadlineLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		deadline *int64
		apiStart *time.Time
		phase    corev1.PodPhase
		reason   string
		left     time.Duration
		ok       bool
	}{
		{name: "no deadline"},
		{name: "running", deadline: ptr.To[int64](60), left: 30 * time.Second, ok: true},
		{name: "past", deadline: ptr.To[int64](10), left: -20 * time.Second, ok: true},
		{name: "start from the API outlives a restart", deadline: ptr.To[int64](60), apiStart: ptr.To(now.Add(-90 * time.Second)), left: -30 * time.Second, ok: true},
		{name: "finished first", deadline: ptr.To[int64](10), phase: corev1.PodSucceeded},
		{name: "failed on its own", deadline: ptr.To[int64](10), phase: corev1.PodFailed, reason: "Evicted"},
		{name: "already failed for the deadline", deadline: ptr.To[int64](10), phase: corev1.PodFailed, reason: reasonDeadline, left: -20 * time.Second, ok: true},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{Spec: corev1.PodSpec{ActiveDeadlineSeconds: tt.deadline}, Status: corev1.PodStatus{Phase: tt.phase, Reason: tt.reason}}
		if tt.apiStart != nil {
			pod.Status.StartTime = &metav1.Time{Time: *tt.apiStart}
		}
		left, ok := deadlineLeft(pod, now.Add(-30*time.Second), now)
		if left != tt.left || ok != tt.ok {
			t.Errorf("%s: %v %v, want %v %v", tt.name, left, ok, tt.left, tt.ok)
		}
	}
}

func TestWakeForDeadline(t *testing.T) {
	t.Parallel()
	rec := &podRecord{start: time.Now()}
	pod := &corev1.Pod{}
	if got := wakeForDeadline(rec, pod, 0); got != 0 {
		t.Errorf("no deadline: wake after %v, want only when woken", got)
	}
	pod.Spec.ActiveDeadlineSeconds = ptr.To[int64](30)
	if got := wakeForDeadline(rec, pod, 0); got <= 29*time.Second || got > 30*time.Second {
		t.Errorf("nothing else to do: wake after %v, want the deadline", got)
	}
	if got := wakeForDeadline(rec, pod, time.Second); got != time.Second {
		t.Errorf("sooner work: wake after %v, want 1s", got)
	}
	rec.start = time.Now().Add(-time.Hour)
	if got := wakeForDeadline(rec, pod, time.Minute); got <= 0 || got > time.Millisecond {
		t.Errorf("past the deadline: wake after %v, want at once", got)
	}
	if !pastDeadline(rec, pod) {
		t.Error("an hour-old pod with a 30 s deadline is not past it")
	}
}
