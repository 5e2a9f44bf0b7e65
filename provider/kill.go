package provider

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// killPod stops the pod's containers with the grace period (SIGTERM, then SIGKILL at the
// deadline: CRI StopContainer's timeout), reads their final state, then removes its
// sandboxes, containers and log directory from the host. It is safe to call again after a
// partial failure.
func (p *Provider) killPod(ctx context.Context, rec *podRecord, pod *corev1.Pod, grace int64) (observation, error) {
	sel := map[string]string{labelPodUID: string(pod.UID), labelNode: p.cfg.NodeName}
	ctrs, err := p.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return observation{}, err
	}
	stopCtx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second+time.Minute)
	defer cancel()
	g, gctx := errgroup.WithContext(stopCtx)
	for _, c := range ctrs.Containers {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		p.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.GetMetadata().GetName())
		g.Go(func() error {
			// preStop hook within the grace period, then StopContainer; gone already is stopped.
			return p.stopContainer(gctx, pod, c.GetMetadata().GetName(), c.Id, grace)
		})
	}
	if err := g.Wait(); err != nil {
		return observation{}, fmt.Errorf("stop containers: %w", err)
	}
	obs, err := p.observe(ctx, rec, pod)
	if err != nil {
		return obs, err
	}
	sbs, err := p.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return obs, err
	}
	for _, sb := range sbs.Items {
		if err := p.removeSandbox(ctx, sb.Id); err != nil {
			return obs, err
		}
	}
	// The directories are named from the pod, so they go even when no sandbox was ever made.
	if err := p.removePodDir(ctx, p.podDir(pod)); err != nil {
		return obs, err
	}
	return obs, p.removeLogDir(ctx, podLogDir(p.cfg.LogRoot, pod.Namespace, pod.Name, string(pod.UID)))
}

// removeSandbox stops and removes a sandbox with its containers, and its log directory. A
// sandbox that is already gone counts as removed.
func (p *Provider) removeSandbox(ctx context.Context, id string) error {
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
		return fmt.Errorf("remove sandbox: %w", err)
	}
	// CRI does not report the log directory; it is named from the sandbox's pod identity.
	if md := st.GetStatus().GetMetadata(); md != nil {
		return p.removeLogDir(ctx, podLogDir(p.cfg.LogRoot, md.Namespace, md.Name, md.Uid))
	}
	return nil
}

// removeLogDir deletes a pod's log directory, refusing any path outside the log root.
func (p *Provider) removeLogDir(ctx context.Context, dir string) error {
	clean := path.Clean(dir)
	root := path.Clean(p.cfg.LogRoot)
	if !strings.HasPrefix(clean, root+"/") || strings.Contains(strings.TrimPrefix(clean, root+"/"), "/") {
		return fmt.Errorf("refusing to remove %q: not a pod directory under %s", dir, root)
	}
	if err := p.host.RemoveAll(ctx, clean); err != nil {
		return fmt.Errorf("remove pod log directory: %w", err)
	}
	return nil
}
