package podworker

import (
	"context"
	"errors"
	"fmt"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// removeOldSandboxes removes the pod's sandboxes other than the current one once no container
// is left in them.
func (p *Worker) removeOldSandboxes(ctx context.Context, obs *observation) {
	for id, n := range obs.oldSandboxes {
		if n > 0 {
			continue
		}
		if err := p.removeSandbox(ctx, id); err != nil {
			log.G(ctx).WithError(err).Warn("cannot remove the pod's old sandbox")
		}
	}
}

// startSandbox creates the pod's sandbox, replacing one that is no longer ready (the kubelet's
// "SandboxChanged"), and the pod's log directories on the host.
func (p *Worker) startSandbox(ctx context.Context, pod *corev1.Pod, obs *observation) error {
	attempt := uint32(0)
	if obs.sandbox != nil {
		attempt = obs.sandbox.GetMetadata().GetAttempt() + 1
		p.recorder.Event(pod, corev1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
		// The old sandbox is stopped (which stops its containers), not removed: its
		// containers are the pod's last instances, whose exit the status shows as lastState
		// and whose attempt the next instances continue, as the kubelet's restart count does
		// across sandboxes. It is removed once they are pruned (removeOldSandboxes).
		if _, err := p.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: obs.sandbox.Id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
			return fmt.Errorf("stop the pod's old sandbox: %w", err)
		}
	}
	cfg := kuberuntime.SandboxConfig(p.cfg.NodeName, p.cfg.LogRoot, pod, attempt)
	handler, err := p.gpu.RuntimeHandler(ctx, pod)
	if err != nil {
		p.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return fmt.Errorf("run pod sandbox: %w", err)
	}
	// containerd opens a container's log file when it creates the container, not the
	// sandbox: the directories are made while the sandbox starts.
	dirs := make(chan error, 1)
	go func() { dirs <- p.makeLogDirs(ctx, pod, cfg.LogDirectory) }()
	dns, err := p.dns.config(ctx, pod) // the host's resolv.conf, merged with the pod's dnsConfig
	if err != nil {
		<-dirs
		return err
	}
	cfg.DnsConfig = dns
	resp, err := p.cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler.Name})
	if dirErr := <-dirs; dirErr != nil {
		if err == nil { // without its log directories the sandbox is of no use: start over
			if rmErr := p.removeSandbox(ctx, resp.PodSandboxId); rmErr != nil {
				log.G(ctx).WithError(rmErr).Warn("cannot remove a sandbox whose log directories are missing")
			}
		}
		return dirErr
	}
	if err != nil {
		err = p.gpu.SandboxError(ctx, handler, err)
		p.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return fmt.Errorf("run pod sandbox: %w", err)
	}
	obs.sandbox = &runtimeapi.PodSandboxStatus{Id: resp.PodSandboxId, Metadata: cfg.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY}
	obs.containers = map[string][]*runtimeapi.ContainerStatus{}
	return nil
}

// makeLogDirs creates the pod's log directory and one per container, as the kubelet does
// before creating containers (containerd opens the log file but does not make its directory).
// The containers' directories are made concurrently, over the one SFTP session.
func (p *Worker) makeLogDirs(ctx context.Context, pod *corev1.Pod, dir string) error {
	// The record by which Satellite finds the directory again if the pod vanishes while it is
	// away (collectPodDirs); a log root shared with anything else is left alone. It is made
	// before the directory and removed after it, so no moment leaves a directory unrecorded.
	if err := p.host.MkdirAll(ctx, p.logDirRecord(dir), 0o755); err != nil {
		return fmt.Errorf("create pod log directory: %w", err)
	}
	if err := p.host.MkdirAll(ctx, dir, 0o755); err != nil {
		return fmt.Errorf("create pod log directory: %w", err)
	}
	var g errgroup.Group
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			g.Go(func() error {
				if err := p.host.MkdirAll(ctx, dir+"/"+c.Name, 0o755); err != nil {
					return fmt.Errorf("create pod log directory: %w", err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}
