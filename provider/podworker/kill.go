package podworker

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/status"
	"github.com/satellite-vk/satellite/remote"
)

// killPod stops the pod's containers with the grace period (SIGTERM, then SIGKILL at the
// deadline: CRI StopContainer's timeout), reads their final state, then removes its
// sandboxes, containers and log directory from the host. It is safe to call again after a
// partial failure.
func (p *Worker) killPod(ctx context.Context, rec *podRecord, pod *corev1.Pod, grace int64) (observation, error) {
	sel := map[string]string{kuberuntime.LabelPodUID: string(pod.UID), kuberuntime.LabelNode: p.cfg.NodeName}
	ctrs, err := p.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return observation{}, err
	}
	if err := p.stopContainers(ctx, pod, ctrs.Containers, grace); err != nil {
		return observation{}, fmt.Errorf("stop containers: %w", err)
	}
	p.store.markStopped(pod.UID)
	obs, err := p.observe(ctx, rec, pod)
	if err != nil {
		return obs, err
	}
	sbs, err := p.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return obs, err
	}
	for _, sb := range sbs.Items {
		err := p.removeSandbox(ctx, sb.Id)
		if errors.Is(err, errSandboxNotRemoved) {
			// Stopped, its containers and network down: as the kubelet, which finishes a pod
			// once its sandboxes are stopped and leaves their removal to its garbage
			// collector, the pod is done; the orphan collector removes the sandbox later.
			log.G(ctx).WithError(err).WithField("sandbox", sb.Id).Warn("the pod's stopped sandbox is left for the orphan collector")
			continue
		}
		if err != nil {
			return obs, err
		}
	}
	// The directories are named from the pod, so they go even when no sandbox was ever made.
	if err := p.volumes.Remove(ctx, pod); err != nil {
		return obs, err
	}
	return obs, p.removeLogDir(ctx, kuberuntime.PodLogDir(p.cfg.LogRoot, pod.Namespace, pod.Name, string(pod.UID)))
}

// stopContainers stops the pod's running containers at once, each with the grace period; the
// sidecars after them, one after another, last declared first, each with what is left of it
// (the kubelet's termination ordering).
func (p *Worker) stopContainers(ctx context.Context, pod *corev1.Pod, ctrs []*runtimeapi.Container, grace int64) error {
	stopCtx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second+time.Minute)
	defer cancel()
	deadline := time.Now().Add(time.Duration(grace) * time.Second)
	sidecars := map[string]int{}
	for i := range pod.Spec.InitContainers {
		if kubecontainer.IsSidecar(&pod.Spec.InitContainers[i]) {
			sidecars[pod.Spec.InitContainers[i].Name] = i
		}
	}
	var later []*runtimeapi.Container
	g, gctx := errgroup.WithContext(stopCtx)
	for _, c := range ctrs {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if _, ok := sidecars[c.GetMetadata().GetName()]; ok {
			later = append(later, c)
			continue
		}
		p.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.GetMetadata().GetName())
		g.Go(func() error {
			// preStop hook within the grace period, then StopContainer; gone already is stopped.
			return p.stopContainer(gctx, pod, c.GetMetadata().GetName(), c.Id, grace)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	sort.Slice(later, func(i, j int) bool {
		return sidecars[later[i].GetMetadata().GetName()] > sidecars[later[j].GetMetadata().GetName()]
	})
	for _, c := range later {
		p.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.GetMetadata().GetName())
		left := max(int64(time.Until(deadline).Round(time.Second)/time.Second), 0)
		if err := p.stopContainer(stopCtx, pod, c.GetMetadata().GetName(), c.Id, left); err != nil {
			return err
		}
	}
	return nil
}

// errSandboxNotRemoved says a sandbox was stopped but the runtime did not remove it.
var errSandboxNotRemoved = errors.New("sandbox stopped but not removed")

// removeSandbox stops and removes a sandbox with its containers, and its log directory. A
// sandbox that is already gone counts as removed; one stopped that the runtime would not
// remove is an errSandboxNotRemoved.
func (p *Worker) removeSandbox(ctx context.Context, id string) error {
	st, err := p.cri.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := p.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("stop sandbox: %w", err)
	}
	if _, err := p.cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("%w: %w", errSandboxNotRemoved, err)
	}
	// CRI does not report the log directory; it is named from the sandbox's pod identity.
	if md := st.GetStatus().GetMetadata(); md != nil {
		return p.removeLogDir(ctx, kuberuntime.PodLogDir(p.cfg.LogRoot, md.Namespace, md.Name, md.Uid))
	}
	return nil
}

// removeLogDir deletes a pod's log directory, refusing any path outside the log root.
func (p *Worker) removeLogDir(ctx context.Context, dir string) error {
	clean := path.Clean(dir)
	root := path.Clean(p.cfg.LogRoot)
	if !strings.HasPrefix(clean, root+"/") || strings.Contains(strings.TrimPrefix(clean, root+"/"), "/") {
		return fmt.Errorf("refusing to remove %q: not a pod directory under %s", dir, root)
	}
	if err := p.host.RemoveAll(ctx, clean); err != nil {
		return fmt.Errorf("remove pod log directory: %w", err)
	}
	if err := p.host.RemoveAll(ctx, p.logDirRecord(clean)); err != nil {
		return fmt.Errorf("remove pod log directory: %w", err)
	}
	return nil
}

// regularDone reports whether the pod has sidecars running while its regular containers are
// done for good: then its sidecars are stopped.
func regularDone(s *podSync) bool {
	if len(runningSidecars(s.pod, *s.obs)) == 0 {
		return false
	}
	st := status.Generate(s.obs.statusInput(s.pod, s.rec.waiting))
	return status.RegularDone(s.pod, st.ContainerStatuses)
}

// runningSidecars are the pod's running sidecars, last declared first: the order the kubelet
// stops them in, each after those declared after it.
func runningSidecars(pod *corev1.Pod, obs observation) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		c := &pod.Spec.InitContainers[i]
		if h := obs.containers[c.Name]; kubecontainer.IsSidecar(c) && len(h) > 0 && h[0].State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			out = append(out, h[0])
		}
	}
	return out
}

// stopSidecars stops the running sidecars one after another, last declared first, within the
// pod's grace period (their preStop hooks included), and reports whether it stopped any.
func (p *Worker) stopSidecars(ctx context.Context, s *podSync) bool {
	pod := s.pod
	deadline := time.Now().Add(time.Duration(killGrace(pod, nil)) * time.Second)
	stopped := false
	for _, inst := range runningSidecars(pod, *s.obs) {
		name := inst.GetMetadata().GetName()
		p.recorder.Event(kubecontainer.Ref(pod, name), corev1.EventTypeNormal, "Killing", "Stopping container "+name)
		grace := int64(time.Until(deadline).Round(time.Second) / time.Second)
		if err := p.stopContainer(ctx, pod, name, inst.Id, grace); err != nil {
			log.G(ctx).WithError(err).WithField("container", name).Warn("cannot stop a sidecar of a pod whose containers are done")
			return stopped
		}
		stopped = true
	}
	return stopped
}
