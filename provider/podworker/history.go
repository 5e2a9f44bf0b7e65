package podworker

import (
	"context"
	"errors"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// removeDeadInstances removes each container's exited instances but the newest, as the
// kubelet's podContainerDeletor does whenever a container dies (it keeps MaxPerPodContainer,
// one, dead instance of a container): once the instance after it has exited too, an instance
// is gone, and with it the status's lastState (a pod that succeeded after a restart shows
// none). obs loses what was removed; it reports whether anything was.
func (p *Worker) removeDeadInstances(ctx context.Context, rec *podRecord, obs *observation) bool {
	removed := false
	for name, history := range obs.containers {
		var kept []*runtimeapi.ContainerStatus
		dead := 0
		for _, inst := range history { // newest first
			if inst.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				if dead++; dead > 1 && p.removeInstance(ctx, rec, inst) {
					removed = true
					continue
				}
			}
			kept = append(kept, inst)
		}
		obs.containers[name] = kept
	}
	return removed
}

// removeInstance removes one container instance from the host; an instance already gone
// counts as removed.
func (p *Worker) removeInstance(ctx context.Context, rec *podRecord, inst *runtimeapi.ContainerStatus) bool {
	if _, err := p.cri.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: inst.Id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
		log.G(ctx).WithError(err).WithField("container", inst.GetMetadata().GetName()).Warn("cannot remove old container instance")
		return false
	}
	delete(rec.exited, inst.Id)
	return true
}

// pruneHistory keeps only the newest instance of a container, the one `kubectl logs
// --previous` shows once the next instance runs.
func (p *Worker) pruneHistory(ctx context.Context, rec *podRecord, history []*runtimeapi.ContainerStatus) {
	for _, old := range history[1:] {
		p.removeInstance(ctx, rec, old)
	}
}
