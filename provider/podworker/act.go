package podworker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
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
func (p *Worker) act(ctx context.Context, s *podSync) (time.Duration, bool) {
	pruned := p.removeDeadInstances(ctx, s.rec, s.obs)
	if finished(s.rec, s.pod, *s.obs) {
		return p.stopFinished(ctx, s.obs, pruned)
	}
	again, acted, ok := p.readySandbox(ctx, s, pruned)
	if !ok {
		return again, acted
	}
	s.sb = kuberuntime.SandboxConfig(p.cfg.NodeName, p.cfg.LogRoot, s.pod, s.obs.sandbox.GetMetadata().GetAttempt())
	if regularDone(s) {
		// The regular containers are done for good: the sidecars are stopped, in reverse
		// order, and the pod finishes (the kubelet's termination ordering, KEP-753).
		return 0, p.stopSidecars(ctx, s) || acted
	}
	next, again, a, ok := p.initContainers(ctx, s)
	acted = acted || a
	if !ok {
		return again, acted
	}
	next = soonest(next, p.volumes.ResyncIn(s.pod)) // configMap/secret/token updates
	for i := range s.pod.Spec.Containers {
		c := &s.pod.Spec.Containers[i]
		again, a := p.runContainer(ctx, s, c, false, s.obs.containers[c.Name])
		acted = acted || a
		next = soonest(next, again)
	}
	p.removeOldSandboxes(ctx, s.obs)
	return next, acted
}

// stopFinished stops the sandbox of a finished pod, as the kubelet does: nothing is started
// again; containers and logs stay until the pod is deleted. acted is whether the caller
// already changed something on the host.
func (p *Worker) stopFinished(ctx context.Context, obs *observation, acted bool) (time.Duration, bool) {
	if obs.sandbox == nil || obs.sandbox.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return 0, acted
	}
	if _, err := p.cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: obs.sandbox.Id}); err != nil && !errors.Is(err, remote.ErrNotFound) {
		log.G(ctx).WithError(err).Warn("cannot stop the sandbox of a finished pod")
		return retryAfterError, false
	}
	return 0, true
}

// readySandbox makes the pod's sandbox and volumes ready, replacing a sandbox that is no
// longer ready. It reports whether containers may be started now (when not, again is when to
// look again) and whether it changed anything on the host (pruned: the caller did).
func (p *Worker) readySandbox(ctx context.Context, s *podSync, pruned bool) (again time.Duration, acted, ok bool) {
	needSandbox := s.obs.sandbox == nil || s.obs.sandbox.State != runtimeapi.PodSandboxState_SANDBOX_READY
	replacing := needSandbox && s.obs.sandbox != nil
	volErr, sbErr := p.setUp(ctx, s, needSandbox)
	if volErr != nil { // recorded as a FailedMount event by SetUp
		log.G(ctx).WithError(volErr).Warn("volumes not ready")
	}
	if sbErr != nil {
		log.G(ctx).WithError(sbErr).Warn("cannot create pod sandbox")
		return 5 * time.Second, false, false
	}
	acted = needSandbox || pruned
	if replacing {
		// The containers stopped with the old sandbox are the history the new ones continue.
		fresh, err := p.observe(ctx, s.rec, s.pod)
		if err != nil {
			log.G(ctx).WithError(err).Warn("cannot read the pod's containers after replacing its sandbox")
			return retryAfterError, acted, false
		}
		*s.obs = fresh
	}
	if volErr != nil && !p.volumes.Ready(s.pod.UID) {
		return 5 * time.Second, acted, false // nothing starts before its volumes are there
	}
	return 0, acted, true
}

// setUp starts the pod's sandbox when it needs one and sets up its volumes when they are due.
// The two are independent: they are set up at the same time, since both are round trips to
// the host (and the API, for tokens) on the way to the first container.
func (p *Worker) setUp(ctx context.Context, s *podSync, needSandbox bool) (volErr, sbErr error) {
	needVolumes := p.volumes.Due(s.pod.UID)
	switch {
	case needSandbox && needVolumes:
		done := make(chan struct{})
		go func() {
			defer close(done)
			volErr = p.volumes.SetUp(ctx, s.pod)
		}()
		sbErr = p.startSandbox(ctx, s.pod, s.obs)
		<-done
	case needVolumes:
		volErr = p.volumes.SetUp(ctx, s.pod)
	case needSandbox:
		sbErr = p.startSandbox(ctx, s.pod, s.obs)
	}
	return volErr, sbErr
}

// initContainers brings the init containers along, in order: each runs to success before the
// next starts; a sidecar only has to have started, and is kept running (restarted, probed)
// from then on. It reports whether the regular containers may run now; when not, again is
// when to look again. next is the soonest a sidecar wants to be looked at again once the pod
// has initialized.
func (p *Worker) initContainers(ctx context.Context, s *podSync) (next, again time.Duration, acted, ok bool) {
	pod, obs := s.pod, s.obs
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
			again, a := p.createAndStart(ctx, s, c, true, h[0].GetMetadata().GetAttempt()+1)
			return 0, again, acted || a, false
		}
		if kubecontainer.IsSidecar(c) {
			again, a := p.runContainer(ctx, s, c, true, h)
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
		again, a := p.runContainer(ctx, s, c, true, h)
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

// runContainer brings one container towards running given its history on the host.
func (p *Worker) runContainer(ctx context.Context, s *podSync, c *corev1.Container, init bool, history []*runtimeapi.ContainerStatus) (time.Duration, bool) {
	rec, pod, key := s.rec, s.pod, s.key(c)
	attempt := uint32(0)
	if len(history) > 0 {
		latest := history[0]
		switch latest.State {
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			return p.start(ctx, s, c, latest.Id)
		case runtimeapi.ContainerState_CONTAINER_EXITED:
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			delete(rec.waiting, c.Name)
			if init && !kubecontainer.IsSidecar(c) {
				return 0, false
			}
			return p.checkHealth(ctx, s, c, history)
		default:
			delete(rec.waiting, c.Name)
			return 0, false
		}
		if !shouldRestart(c, pod.Spec.RestartPolicy, init, latest.ExitCode) {
			delete(rec.waiting, c.Name)
			return 0, false
		}
		if wait := p.crashLoop.wait(key, time.Unix(0, latest.FinishedAt)); wait > 0 {
			p.setWaiting(s, c.Name, status.Waiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", p.crashLoop.delay(key), c.Name, pod.Name, pod.Namespace, pod.UID)},
				"BackOff", "Back-off restarting failed container "+c.Name+" in pod "+pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")")
			return wait, false
		}
		attempt = latest.GetMetadata().GetAttempt() + 1
		p.pruneHistory(ctx, rec, history)
		p.crashLoop.next(key)
	}
	return p.createAndStart(ctx, s, c, init, attempt)
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

// createAndStart makes the container's image present, creates the container (attempt is its
// instance's number) and starts it.
func (p *Worker) createAndStart(ctx context.Context, s *podSync, c *corev1.Container, init bool, attempt uint32) (time.Duration, bool) {
	pod := s.pod
	if wait, err := p.images.Ensure(ctx, pod, c, s.sb, s.rec.waiting[c.Name].Reason); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.Name).Warn("image not available")
		var w *images.WaitingError
		if !errors.As(err, &w) {
			return retryAfterError, false
		}
		p.setWaiting(s, c.Name, status.Waiting{Reason: w.Reason, Message: w.Message}, "Failed", "Error: "+w.Reason)
		return wait, false
	}
	cfg := kuberuntime.ContainerConfig(p.cfg.NodeName, pod, c, init, attempt)
	if err := p.prepareContainer(ctx, pod, c, cfg); err != nil {
		p.setWaiting(s, c.Name, status.Waiting{Reason: "CreateContainerConfigError", Message: err.Error()}, "Failed", "Error: "+err.Error())
		return 10 * time.Second, false
	}
	release, err := p.gpu.Assign(ctx, c, cfg)
	var short *gpu.Shortage
	switch {
	case errors.As(err, &short):
		// The kubelet fails such a pod at admission; here the devices may be freed by a
		// container on its way out, so the container waits and tries again.
		p.setWaiting(s, c.Name, status.Waiting{Reason: "UnexpectedAdmissionError", Message: err.Error()}, "UnexpectedAdmissionError", err.Error())
		return 5 * time.Second, false
	case err != nil:
		log.G(ctx).WithError(err).WithField("container", c.Name).Warn("cannot allocate GPUs")
		return retryAfterError, false
	}
	if gpus := cfg.Annotations[gpu.Annotation]; gpus != "" {
		log.G(ctx).WithField("container", c.Name).WithField("gpus", gpus).Info("assigned GPUs")
	}
	resp, err := p.cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: s.sandboxID(), Config: cfg, SandboxConfig: s.sb})
	release()
	if err != nil {
		p.setWaiting(s, c.Name, status.Waiting{Reason: "CreateContainerError", Message: err.Error()}, "Failed", "Error: "+err.Error())
		return 10 * time.Second, false
	}
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	return p.start(ctx, s, c, resp.ContainerId)
}

// start starts a created container and runs its postStart hook.
func (p *Worker) start(ctx context.Context, s *podSync, c *corev1.Container, id string) (time.Duration, bool) {
	pod := s.pod
	if _, err := p.cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		// The runtime leaves a container that failed to start exited (reason StartError);
		// the restart policy and back-off decide what happens next, as for any exit.
		p.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		p.crashLoop.next(s.key(c))
		delete(s.rec.waiting, c.Name)
		return 0, true
	}
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	delete(s.rec.waiting, c.Name)
	return p.postStart(ctx, s, c, id), true
}
