package vkadapter

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// gatedPods holds virtual-kubelet's forced deletion of a pod (grace period 0, with the pod's
// UID as a precondition) until no container of the pod runs on the host. virtual-kubelet force-deletes a
// pod marked for deletion as soon as none of its regular containers runs (its podcontroller's
// running): a pod deleted during its init containers, or while its containers wait in a
// back-off, would leave the API while its containers still ran on the host, and a pod of the
// same name could start there beside them. The kubelet deletes the API object only once the
// pod's containers have stopped (its status manager's canBeDeleted); so does Satellite. Its
// sandbox and files go after, and a host that cannot remove them (a containerd that lost a
// container's snapshot) does not hold the API object.
//
// virtual-kubelet does not call the provider's DeletePod for such a pod either (it is taken as
// finished): the gate asks for it, with the grace period the API gives the pod, then waits.
type gatedPods struct {
	statusPatchingPods
	removed Remover // nil: no gate
}

// Remover takes pods off the host: the provider.
type Remover interface {
	// DeletePod stops the pod with its grace period and removes it from the host; it may be
	// called again.
	DeletePod(ctx context.Context, pod *corev1.Pod) error
	// PodStopped is closed once no container of the pod runs on the host (at once for a pod
	// not on it).
	PodStopped(uid types.UID) <-chan struct{}
}

func (c gatedPods) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	if uid, ok := forcedDeletion(opts); ok && c.removed != nil {
		if err := c.removeFromHost(ctx, name, uid); err != nil {
			return err
		}
	}
	return c.statusPatchingPods.Delete(ctx, name, opts)
}

// removeFromHost asks for the pod to be taken off the host, as the API has it (with its
// deletion grace period), and waits until its containers have stopped.
func (c gatedPods) removeFromHost(ctx context.Context, name string, uid types.UID) error {
	if l := c.lister.Load(); l != nil {
		if pod, err := (*l).Pods(c.ns).Get(name); err == nil && pod.UID == uid {
			if err := c.removed.DeletePod(ctx, pod.DeepCopy()); err != nil {
				return fmt.Errorf("delete pod %s/%s from the host: %w", c.ns, name, err)
			}
		}
	}
	select {
	case <-c.removed.PodStopped(uid):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("delete pod %s/%s once its containers stopped: %w", c.ns, name, ctx.Err())
	}
}

// forcedDeletion reports whether opts delete a pod at once, and which pod (its UID): the
// deletion virtual-kubelet sends once it takes the pod for finished.
func forcedDeletion(opts metav1.DeleteOptions) (types.UID, bool) {
	if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 || opts.Preconditions == nil || opts.Preconditions.UID == nil {
		return "", false
	}
	return *opts.Preconditions.UID, true
}
