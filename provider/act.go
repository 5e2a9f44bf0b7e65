package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/images"
	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/status"
	"github.com/satellite-vk/satellite/remote"
)

// act starts what the pod needs next: its sandbox, then its init containers one at a time,
// then its containers, restarting those that exited as the restart policy says. It returns
// when to look again and whether it changed anything on the host.
func (p *Provider) act(ctx context.Context, rec *podRecord, pod *corev1.Pod, obs *observation) (time.Duration, bool) {
	pruned := p.removeDeadInstances(ctx, rec, obs)
	if finished(rec, pod, *obs) {
		// Finished: nothing is started again, and the sandbox is stopped as the kubelet
		// does; containers and logs stay until the pod is deleted.
		if obs.sandbox == nil || obs.sandbox.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			return 0, pruned
		}
		if _, err := p.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: obs.sandbox.Id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
			log.G(ctx).WithError(err).Warn("cannot stop the sandbox of a finished pod")
			return retryAfterError, false
		}
		return 0, true
	}
	needSandbox := obs.sandbox == nil || obs.sandbox.State != runtimeapi.PodSandboxState_SANDBOX_READY
	needVolumes := p.volumes.Due(pod.UID)
	// A new sandbox and the volumes are independent: set them up at the same time, since
	// both are round trips to the host (and the API, for tokens) on the way to the first
	// container. Containers start only once both are there.
	replacing := needSandbox && obs.sandbox != nil
	var volErr, sbErr error
	switch {
	case needSandbox && needVolumes:
		done := make(chan struct{})
		go func() {
			defer close(done)
			volErr = p.volumes.SetUp(ctx, pod)
		}()
		sbErr = p.startSandbox(ctx, pod, obs)
		<-done
	case needVolumes:
		volErr = p.volumes.SetUp(ctx, pod)
	case needSandbox:
		sbErr = p.startSandbox(ctx, pod, obs)
	}
	if volErr != nil { // recorded as a FailedMount event by SetUp
		log.G(ctx).WithError(volErr).Warn("volumes not ready")
	}
	if sbErr != nil {
		log.G(ctx).WithError(sbErr).Warn("cannot create pod sandbox")
		return 5 * time.Second, false
	}
	acted := needSandbox || pruned
	if replacing {
		// The containers stopped with the old sandbox are the history the new ones continue.
		fresh, err := p.observe(ctx, rec, pod)
		if err != nil {
			log.G(ctx).WithError(err).Warn("cannot read the pod's containers after replacing its sandbox")
			return retryAfterError, acted
		}
		*obs = fresh
	}
	if volErr != nil && !p.volumes.Ready(pod.UID) {
		return 5 * time.Second, acted // nothing starts before its volumes are there
	}
	sb := kuberuntime.SandboxConfig(p.cfg.NodeName, p.cfg.LogRoot, pod, obs.sandbox.GetMetadata().GetAttempt())
	if p.regularDone(pod, rec, *obs) {
		// The regular containers are done for good: the sidecars are stopped, in reverse
		// order, and the pod finishes (the kubelet's termination ordering, KEP-753).
		return 0, p.stopSidecars(ctx, pod, *obs) || acted
	}
	next, again, a, ok := p.initContainers(ctx, rec, pod, obs, sb)
	acted = acted || a
	if !ok {
		return again, acted
	}
	next = soonest(next, p.volumes.ResyncIn(pod)) // configMap/secret/token updates
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		again, a := p.runContainer(ctx, rec, pod, obs.sandbox.Id, sb, c, false, obs.containers[c.Name])
		acted = acted || a
		next = soonest(next, again)
	}
	p.removeOldSandboxes(ctx, obs)
	return next, acted
}

// initContainers brings the init containers along, in order: each runs to success before the
// next starts; a sidecar only has to have started, and is kept running (restarted, probed)
// from then on. It reports whether the regular containers may run now; when not, again is
// when to look again. next is the soonest a sidecar wants to be looked at again once the pod
// has initialized.
func (p *Provider) initContainers(ctx context.Context, rec *podRecord, pod *corev1.Pod, obs *observation, sb *runtimeapi.PodSandboxConfig) (next, again time.Duration, acted, ok bool) {
	var health map[string]status.Health
	initialized := false // a regular container has run: sidecars no longer hold the others back
	for i := range pod.Spec.Containers {
		initialized = initialized || len(obs.containers[pod.Spec.Containers[i].Name]) > 0
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		h := obs.containers[c.Name]
		if len(h) > 0 && !obs.inCurrent[h[0].Id] {
			// A new sandbox runs the init containers again, as the kubelet's does; the
			// instance from the old sandbox is the history the new one continues.
			again, a := p.createAndStart(ctx, rec, pod, obs.sandbox.Id, sb, c, true, h[0].GetMetadata().GetAttempt()+1, string(pod.UID)+"/"+c.Name)
			return 0, again, acted || a, false
		}
		if kubecontainer.IsSidecar(c) {
			again, a := p.runContainer(ctx, rec, pod, obs.sandbox.Id, sb, c, true, h)
			acted = acted || a
			if initialized {
				next = soonest(next, again)
				continue
			}
			if health == nil {
				health = p.probes.Health(pod, obs.containers)
			}
			if !a && len(h) > 0 && h[0].State == runtimeapi.ContainerState_CONTAINER_RUNNING && status.SidecarStarted(c, h[0], health) {
				continue
			}
			if again == 0 && a {
				again = 100 * time.Millisecond // look again soon: it has just been (re)started
			}
			return 0, again, acted, false
		}
		if len(h) > 0 && h[0].State == runtimeapi.ContainerState_CONTAINER_EXITED && h[0].ExitCode == 0 {
			continue
		}
		again, a := p.runContainer(ctx, rec, pod, obs.sandbox.Id, sb, c, true, h)
		return 0, again, acted || a, false
	}
	return next, 0, acted, true
}

// soonest is the sooner of two wake-up delays, 0 meaning none.
func soonest(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// finished reports whether the pod has finished: Succeeded or Failed.
func finished(rec *podRecord, pod *corev1.Pod, obs observation) bool {
	phase := status.Generate(obs.statusInput(pod, rec.waiting)).Phase
	return phase == corev1.PodSucceeded || phase == corev1.PodFailed
}

// removeOldSandboxes removes the pod's sandboxes other than the current one once no container
// is left in them.
func (p *Provider) removeOldSandboxes(ctx context.Context, obs *observation) {
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
func (p *Provider) startSandbox(ctx context.Context, pod *corev1.Pod, obs *observation) error {
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
func (p *Provider) makeLogDirs(ctx context.Context, pod *corev1.Pod, dir string) error {
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

// runContainer brings one container towards running given its history on the host.
func (p *Provider) runContainer(ctx context.Context, rec *podRecord, pod *corev1.Pod, sandboxID string, sb *runtimeapi.PodSandboxConfig, c *corev1.Container, init bool, history []*runtimeapi.ContainerStatus) (time.Duration, bool) {
	key := string(pod.UID) + "/" + c.Name
	attempt := uint32(0)
	if len(history) > 0 {
		latest := history[0]
		switch latest.State {
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			return p.start(ctx, rec, pod, c, latest.Id, key)
		case runtimeapi.ContainerState_CONTAINER_EXITED:
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			delete(rec.waiting, c.Name)
			if init && !kubecontainer.IsSidecar(c) {
				return 0, false
			}
			return p.checkHealth(ctx, rec, pod, sandboxID, sb, c, history)
		default:
			delete(rec.waiting, c.Name)
			return 0, false
		}
		if !shouldRestart(c, pod.Spec.RestartPolicy, init, latest.ExitCode) {
			delete(rec.waiting, c.Name)
			return 0, false
		}
		if wait := p.crashLoop.wait(key, time.Unix(0, latest.FinishedAt)); wait > 0 {
			p.setWaiting(rec, pod, c.Name, "CrashLoopBackOff",
				fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", p.crashLoop.delay(key), c.Name, pod.Name, pod.Namespace, pod.UID),
				corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+c.Name+" in pod "+pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")")
			return wait, false
		}
		attempt = latest.GetMetadata().GetAttempt() + 1
		p.pruneHistory(ctx, rec, history)
		p.crashLoop.next(key)
	}
	return p.createAndStart(ctx, rec, pod, sandboxID, sb, c, init, attempt, key)
}

func shouldRestart(c *corev1.Container, policy corev1.RestartPolicy, init bool, exitCode int32) bool {
	switch {
	case kubecontainer.IsSidecar(c):
		return true
	case policy == corev1.RestartPolicyNever:
		return false
	case policy == corev1.RestartPolicyOnFailure || init:
		return exitCode != 0
	}
	return true
}

// removeDeadInstances removes each container's exited instances but the newest, as the
// kubelet's podContainerDeletor does whenever a container dies (it keeps MaxPerPodContainer,
// one, dead instance of a container): once the instance after it has exited too, an instance
// is gone, and with it the status's lastState (a pod that succeeded after a restart shows
// none). obs loses what was removed; it reports whether anything was.
func (p *Provider) removeDeadInstances(ctx context.Context, rec *podRecord, obs *observation) bool {
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
func (p *Provider) removeInstance(ctx context.Context, rec *podRecord, inst *runtimeapi.ContainerStatus) bool {
	if _, err := p.cri.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: inst.Id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
		log.G(ctx).WithError(err).WithField("container", inst.GetMetadata().GetName()).Warn("cannot remove old container instance")
		return false
	}
	delete(rec.exited, inst.Id)
	return true
}

// pruneHistory keeps only the newest instance of a container, the one `kubectl logs
// --previous` shows once the next instance runs.
func (p *Provider) pruneHistory(ctx context.Context, rec *podRecord, history []*runtimeapi.ContainerStatus) {
	for _, old := range history[1:] {
		p.removeInstance(ctx, rec, old)
	}
}

func (p *Provider) createAndStart(ctx context.Context, rec *podRecord, pod *corev1.Pod, sandboxID string, sb *runtimeapi.PodSandboxConfig, c *corev1.Container, init bool, attempt uint32, key string) (time.Duration, bool) {
	if wait, err := p.images.Ensure(ctx, pod, c, sb, rec.waiting[c.Name].Reason); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.Name).Warn("image not available")
		var w *images.WaitingError
		if !errors.As(err, &w) {
			return retryAfterError, false
		}
		p.setWaiting(rec, pod, c.Name, w.Reason, w.Message, corev1.EventTypeWarning, "Failed", "Error: "+w.Reason)
		return wait, false
	}
	cfg := kuberuntime.ContainerConfig(p.cfg.NodeName, pod, c, init, attempt)
	if err := p.prepareContainer(ctx, pod, c, cfg); err != nil {
		p.setWaiting(rec, pod, c.Name, "CreateContainerConfigError", err.Error(), corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return 10 * time.Second, false
	}
	release, err := p.gpu.Assign(ctx, c, cfg)
	var short *gpu.Shortage
	switch {
	case errors.As(err, &short):
		// The kubelet fails such a pod at admission; here the devices may be freed by a
		// container on its way out, so the container waits and tries again.
		p.setWaiting(rec, pod, c.Name, "UnexpectedAdmissionError", err.Error(), corev1.EventTypeWarning, "UnexpectedAdmissionError", err.Error())
		return 5 * time.Second, false
	case err != nil:
		log.G(ctx).WithError(err).WithField("container", c.Name).Warn("cannot allocate GPUs")
		return retryAfterError, false
	}
	if gpus := cfg.Annotations[gpu.Annotation]; gpus != "" {
		log.G(ctx).WithField("container", c.Name).WithField("gpus", gpus).Info("assigned GPUs")
	}
	resp, err := p.cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sandboxID, Config: cfg, SandboxConfig: sb})
	release()
	if err != nil {
		p.setWaiting(rec, pod, c.Name, "CreateContainerError", err.Error(), corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return 10 * time.Second, false
	}
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	return p.start(ctx, rec, pod, c, resp.ContainerId, key)
}

func (p *Provider) start(ctx context.Context, rec *podRecord, pod *corev1.Pod, c *corev1.Container, id, key string) (time.Duration, bool) {
	if _, err := p.cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		// The runtime leaves a container that failed to start exited (reason StartError);
		// the restart policy and back-off decide what happens next, as for any exit.
		p.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		p.crashLoop.next(key)
		delete(rec.waiting, c.Name)
		return 0, true
	}
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	delete(rec.waiting, c.Name)
	return p.postStart(ctx, rec, pod, c, id), true
}

// setWaiting records why a container is waiting, with an event when the reason is new.
func (p *Provider) setWaiting(rec *podRecord, pod *corev1.Pod, name, reason, message, eventType, eventReason, eventMessage string) {
	if prev := rec.waiting[name]; prev.Reason != reason || prev.Message != message {
		p.recorder.Event(pod, eventType, eventReason, eventMessage)
	}
	rec.waiting[name] = status.Waiting{Reason: reason, Message: message}
}
