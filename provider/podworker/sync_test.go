package podworker

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A finished pod's status waits while its sandbox is still seen ready, for up to
// terminalHold: virtual-kubelet writes no status after the first finished one.
func TestHoldTerminal(t *testing.T) {
	ctx := t.Context()
	rec := &podRecord{}
	if w := holdTerminal(ctx, rec, corev1.PodRunning, true); w != 0 {
		t.Errorf("running pod held %v", w)
	}
	if w := holdTerminal(ctx, rec, corev1.PodSucceeded, true); w == 0 {
		t.Error("finished pod with a ready sandbox published at once")
	}
	if w := holdTerminal(ctx, rec, corev1.PodSucceeded, false); w != 0 {
		t.Errorf("finished pod with a stopped sandbox held %v", w)
	}
	if !rec.terminalHeld.IsZero() {
		t.Error("hold not reset once the sandbox was seen stopped")
	}
	if w := holdTerminal(ctx, rec, corev1.PodFailed, true); w == 0 {
		t.Error("failed pod with a ready sandbox published at once")
	}
	rec.terminalHeld = time.Now().Add(-terminalHold)
	if w := holdTerminal(ctx, rec, corev1.PodSucceeded, true); w != 0 {
		t.Errorf("finished pod held %v past terminalHold", w)
	}
}
