package provider

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod deleted before Satellite took it in (a restart) is taken in to be deleted, so its
// containers on the host are stopped rather than left to orphan collection.
func TestDeletePodNotYetTakenIn(t *testing.T) {
	p := New(Config{NodeName: "n"}, Deps{})
	grace := int64(7)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u-1", DeletionGracePeriodSeconds: &grace}}
	if err := p.DeletePod(context.Background(), pod); err != nil {
		t.Fatalf("DeletePod of a pod not taken in yet: %v", err)
	}
	rec, got, deleting, g := p.store.record("u-1")
	if rec == nil || got.Name != "p" || !deleting || g != 7 {
		t.Errorf("store: rec=%v pod=%v deleting=%v grace=%d, want the pod marked deleting with grace 7", rec != nil, got, deleting, g)
	}
}
