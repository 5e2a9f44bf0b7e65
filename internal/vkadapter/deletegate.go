package vkadapter

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// gatedPods holds virtual-kubelet's forced deletion of a pod (grace period 0, with the pod's
// UID as a precondition) until the pod is gone from the host. virtual-kubelet force-deletes a
// pod marked for deletion as soon as none of its regular containers runs (its podcontroller's
// running): a pod deleted during its init containers, or while its containers wait in a
// back-off, would leave the API while its containers still ran on the host, and a pod of the
// same name could start there beside them. The kubelet deletes the API object only once the
// pod's containers and volumes are gone (its status manager's canBeDeleted); so does Satellite.
type gatedPods struct {
	statusPatchingPods
	removed func(types.UID) <-chan struct{} // nil: no gate
}

func (c gatedPods) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	if uid, ok := forcedDeletion(opts); ok && c.removed != nil {
		select {
		case <-c.removed(uid):
		case <-ctx.Done():
			return fmt.Errorf("delete pod %s/%s once it is off the host: %w", c.ns, name, ctx.Err())
		}
	}
	return c.statusPatchingPods.Delete(ctx, name, opts)
}

// forcedDeletion reports whether opts delete a pod at once, and which pod (its UID): the
// deletion virtual-kubelet sends once it takes the pod for finished.
func forcedDeletion(opts metav1.DeleteOptions) (types.UID, bool) {
	if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 || opts.Preconditions == nil || opts.Preconditions.UID == nil {
		return "", false
	}
	return *opts.Preconditions.UID, true
}
