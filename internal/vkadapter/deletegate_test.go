package vkadapter

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// virtual-kubelet's forced deletion of a pod (grace 0, UID precondition) waits until the pod
// is gone from the host; other deletions, and pods the provider does not hold, go at once.
func TestForcedDeletionWaitsForTheHost(t *testing.T) {
	ctx := t.Context()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}}
	grace := int64(10)
	pod.DeletionGracePeriodSeconds = &grace
	client := fake.NewClientset(pod)
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := indexer.Add(pod); err != nil {
		t.Fatal(err)
	}
	l := &Listers{}
	l.Set(corev1listers.NewPodLister(indexer), nil)
	r := &fakeRemover{removed: make(chan struct{})}
	pods := NodeClient(client, client, l, r).CoreV1().Pods("ns")

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
	if got := r.deletedGrace(); len(got) != 1 || got[0] != 10 {
		t.Errorf("provider asked to delete the pod with grace periods %v, want [10] (the API's)", got)
	}
	close(r.removed)
	if err := <-done; err != nil {
		t.Fatalf("forced deletion once the pod left the host: %v", err)
	}
	if _, err := client.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod still in the API after its forced deletion: %v", err)
	}
	if got := r.askedFor(); len(got) != 1 || got[0] != "u1" {
		t.Errorf("gate waited for %v, want [u1]", got)
	}

	// A deletion with a grace period (a user's) is not held.
	if _, err := client.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "p", *metav1.NewDeleteOptions(30)); err != nil {
		t.Fatalf("graceful deletion: %v", err)
	}
	if got := r.askedFor(); len(got) != 1 {
		t.Errorf("graceful deletion went through the gate: %v", got)
	}
}

// A held deletion ends with its context, with an error that says why.
func TestForcedDeletionEndsWithItsContext(t *testing.T) {
	client := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"}})
	pods := NodeClient(client, client, &Listers{}, &fakeRemover{removed: make(chan struct{})}).CoreV1().Pods("ns")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	forced := *metav1.NewDeleteOptions(0)
	forced.Preconditions = metav1.NewUIDPreconditions("u1")
	err := pods.Delete(ctx, "p", forced)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held deletion past its context: %v, want DeadlineExceeded", err)
	}
}

// fakeRemover is a provider whose pods leave the host when removed is closed.
type fakeRemover struct {
	removed chan struct{}
	mu      sync.Mutex
	grace   []int64
	asked   []types.UID
}

func (f *fakeRemover) DeletePod(_ context.Context, pod *corev1.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grace = append(f.grace, *pod.DeletionGracePeriodSeconds)
	return nil
}

func (f *fakeRemover) PodStopped(uid types.UID) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, uid)
	return f.removed
}

func (f *fakeRemover) deletedGrace() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.grace)
}

func (f *fakeRemover) askedFor() []types.UID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}
