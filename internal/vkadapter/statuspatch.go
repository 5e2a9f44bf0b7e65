package vkadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// statusPatchingPods is the pods client virtual-kubelet's pod controller writes statuses
// with: its UpdateStatus becomes the patch the kubelet's status manager sends (a two-way
// strategic merge from the status the informer has to the new one, with the pod's UID as a
// precondition, statusutil.PatchPodStatus). An update needs no current resourceVersion, so
// statuses in quick succession (Running, then Terminated a moment later) never meet a
// conflict and its retry back-off, and conditions other controllers set are left alone.
type statusPatchingPods struct {
	corev1client.PodInterface
	ns     string
	lister *atomic.Pointer[corev1listers.PodLister] // set once the node has its informer
	sent   *sentStatuses
}

func (c statusPatchingPods) UpdateStatus(ctx context.Context, pod *corev1.Pod, opts metav1.UpdateOptions) (*corev1.Pod, error) {
	l := c.lister.Load()
	if l == nil || c.sent == nil {
		return c.PodInterface.UpdateStatus(ctx, pod, opts)
	}
	old, err := (*l).Pods(c.ns).Get(pod.Name)
	if err != nil || old.UID != pod.UID {
		c.sent.forget(pod.UID)
		return c.PodInterface.UpdateStatus(ctx, pod, opts)
	}
	// The patch is taken from the freshest status known: the informer's may lag behind the
	// last one written, and a patch from a stale base leaves fields of the newer one in place
	// (a condition turned True keeping the reason it had while False).
	base := c.sent.newer(old)
	patch, err := statusPatch(base.Status, pod.Status, pod.UID)
	if err != nil {
		return nil, err
	}
	out, err := c.PodInterface.Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: opts.FieldManager}, "status")
	if err != nil {
		c.sent.forget(pod.UID) // base the next patch on the informer's again
		return nil, err
	}
	c.sent.put(out)
	return out, nil
}

// sentStatuses are the pods as the API returned them after Satellite's last status write,
// by UID, kept while the pod is newer there than in the informer.
type sentStatuses struct {
	mu   sync.Mutex
	pods map[types.UID]*corev1.Pod
}

func newSentStatuses() *sentStatuses { return &sentStatuses{pods: map[types.UID]*corev1.Pod{}} }

// maxSent bounds the pods kept: one whose last write was its last (deleted since) is
// otherwise never dropped. Dropping all only bases the next patches on the informer's.
const maxSent = 1024

func (s *sentStatuses) put(p *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pods) >= maxSent {
		clear(s.pods)
	}
	s.pods[p.UID] = p
}

func (s *sentStatuses) forget(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pods, uid)
}

// newer is the pod last written if the informer's copy is older than it, else the
// informer's (and the written one is dropped: the informer has caught up).
func (s *sentStatuses) newer(informer *corev1.Pod) *corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := s.pods[informer.UID]
	if sent == nil {
		return informer
	}
	a, errA := strconv.ParseUint(sent.ResourceVersion, 10, 64)
	b, errB := strconv.ParseUint(informer.ResourceVersion, 10, 64)
	if errA == nil && errB == nil && a > b {
		return sent
	}
	delete(s.pods, informer.UID)
	return informer
}

// statusPatch is the strategic merge patch from one status of a pod to another, with the UID
// as a precondition (a pod of the same name made since is not patched).
func statusPatch(from, to corev1.PodStatus, uid types.UID) ([]byte, error) {
	oldData, err := json.Marshal(corev1.Pod{Status: from})
	if err != nil {
		return nil, err
	}
	newData, err := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: to})
	if err != nil {
		return nil, err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, corev1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("pod status patch: %w", err)
	}
	return patch, nil
}
