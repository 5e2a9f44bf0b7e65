package vkadapter

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// virtual-kubelet's forced deletion of a pod (grace 0, UID precondition) waits until the pod
// is gone from the host; other deletions, and pods the provider does not hold, go at once.
func TestForcedDeletionWaitsForTheHost(t *testing.T) {
	ctx := t.Context()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}}
	client := fake.NewClientset(pod)
	removed := make(chan struct{})
	var asked []types.UID
	pods := NodeClient(client, client, &Listers{}, func(uid types.UID) <-chan struct{} {
		asked = append(asked, uid)
		return removed
	}).CoreV1().Pods("ns")

	forced := *metav1.NewDeleteOptions(0)
	forced.Preconditions = metav1.NewUIDPreconditions("u1")
	done := make(chan error, 1)
	go func() { done <- pods.Delete(ctx, "p", forced) }()
	select {
	case err := <-done:
		t.Fatalf("forced deletion returned (%v) while the pod was still on the host", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := client.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{}); err != nil {
		t.Fatalf("pod gone from the API before it left the host: %v", err)
	}
	close(removed)
	if err := <-done; err != nil {
		t.Fatalf("forced deletion once the pod left the host: %v", err)
	}
	if _, err := client.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod still in the API after its forced deletion: %v", err)
	}
	if len(asked) != 1 || asked[0] != "u1" {
		t.Errorf("gate asked for %v, want [u1]", asked)
	}

	// A deletion with a grace period (a user's) is not held.
	if _, err := client.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "p", *metav1.NewDeleteOptions(30)); err != nil {
		t.Fatalf("graceful deletion: %v", err)
	}
	if len(asked) != 1 {
		t.Errorf("graceful deletion asked the gate: %v", asked)
	}
}

// A held deletion ends with its context, with an error that says why.
func TestForcedDeletionEndsWithItsContext(t *testing.T) {
	client := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}})
	pods := NodeClient(client, client, &Listers{}, func(types.UID) <-chan struct{} { return make(chan struct{}) }).CoreV1().Pods("ns")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	forced := *metav1.NewDeleteOptions(0)
	forced.Preconditions = metav1.NewUIDPreconditions("u1")
	err := pods.Delete(ctx, "p", forced)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held deletion past its context: %v, want DeadlineExceeded", err)
	}
}
