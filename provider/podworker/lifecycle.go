package podworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/prober"
	"github.com/satellite-vk/satellite/provider/status"
	"github.com/satellite-vk/satellite/remote"
)

// minGrace is the shortest time a container is given to stop: the kubelet never sends
// SIGKILL sooner (minimumGracePeriodInSeconds).
const minGrace = 2

// hookLimit bounds a postStart hook, for which the kubelet sets no deadline (every remote
// call needs one here); the pod's deletion ends the hook sooner.
const hookLimit = 24 * time.Hour

// podDesc names a pod as the kubelet's messages do (format.Pod).
func podDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// killGrace is the grace period the kubelet gives a container it kills while the pod runs
// (setTerminationGracePeriod): the deletion's, when the pod is being deleted; else the failed
// probe's terminationGracePeriodSeconds; else the pod's.
func killGrace(pod *corev1.Pod, failed *corev1.Probe) int64 {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds == nil:
		return minGrace
	case failed != nil && failed.TerminationGracePeriodSeconds != nil:
		return *failed.TerminationGracePeriodSeconds
	}
	return *pod.Spec.TerminationGracePeriodSeconds
}

// killContainer stops a container of a running pod the kubelet's way (killContainer): a
// Normal Killing event with the message, then stopContainer.
func (p *Worker) killContainer(ctx context.Context, pod *corev1.Pod, name, id, message string, grace int64) error {
	p.recorder.Event(kubecontainer.Ref(pod, name), corev1.EventTypeNormal, "Killing", message)
	return p.stopContainer(ctx, pod, name, id, grace)
}

// stopContainer runs the container's preStop hook, if it has one and there is a grace period,
// for at most the grace period, then stops the container (SIGTERM, SIGKILL after what is left
// of the grace period, at least minGrace). A container already gone counts as stopped.
func (p *Worker) stopContainer(ctx context.Context, pod *corev1.Pod, name, id string, grace int64) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(grace+minGrace)*time.Second+time.Minute)
	defer cancel()
	if c := kubecontainer.FindLongRunning(pod, name); c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
		used, wait := p.preStop(ctx, pod, c, id, grace)
		defer wait()
		grace -= used
	}
	grace = max(grace, minGrace)
	_, err := p.cri.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: grace})
	if err != nil && !errors.Is(err, remote.ErrNotFound) {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	return nil
}

// preStop starts the container's preStop hook and waits for it, at most grace seconds, as the
// kubelet's executePreStopHook. It returns the whole seconds it waited, and a function that
// ends the hook (once the container has stopped) and waits for it. A hook that fails gives
// the Warning event FailedPreStopHook, without its output (it may hold secrets).
func (p *Worker) preStop(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, grace int64) (int64, func()) {
	hctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := p.runHook(hctx, pod, c, id, c.Lifecycle.PreStop); err != nil && hctx.Err() == nil {
			log.G(ctx).WithError(err).WithField("container", c.Name).Warn("preStop hook failed")
			p.recorder.Event(kubecontainer.Ref(pod, c.Name), corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed")
		}
	}()
	t := time.NewTimer(time.Duration(grace) * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.G(ctx).WithField("container", c.Name).WithField("gracePeriod", grace).Info("preStop hook not completed in the grace period")
	case <-ctx.Done():
	}
	return int64(time.Since(start).Seconds()), func() {
		cancel()
		<-done
	}
}

// postStart runs the container's postStart hook right after it started, as the kubelet does:
// the pod's status shows the container running only once the hook is done. A failed hook
// gives the Warning event FailedPostStartHook, kills the container (with its preStop hook)
// and leaves it waiting with reason PostStartHookError and the hook's message, to be started
// again as the restart policy says. The pod's deletion ends the hook. It returns when to sync
// the pod again.
func (p *Worker) postStart(ctx context.Context, s *podSync, c *corev1.Container, id string) time.Duration {
	pod := s.pod
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return 0
	}
	hctx, cancel := p.untilDeleted(ctx, pod.UID)
	defer cancel()
	hctx, cancelLimit := context.WithTimeout(hctx, hookLimit)
	defer cancelLimit()
	msg, err := p.runHook(hctx, pod, c, id, c.Lifecycle.PostStart)
	if err == nil {
		return 0
	}
	if ctx.Err() != nil || errors.Is(hctx.Err(), context.Canceled) {
		return 0 // Satellite stops, or the pod is being deleted: its deletion stops the container
	}
	log.G(ctx).WithError(err).WithField("container", c.Name).Warn("postStart hook failed")
	p.recorder.Event(kubecontainer.Ref(pod, c.Name), corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed")
	if err := p.killContainer(ctx, pod, c.Name, id, "FailedPostStartHook", killGrace(pod, nil)); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.Name).Warn("cannot kill a container whose postStart hook failed")
	}
	s.rec.waiting[c.Name] = status.Waiting{Reason: "PostStartHookError", Message: msg}
	return retryAfterError
}

// untilDeleted is ctx, also cancelled once the pod is marked for deletion.
func (p *Worker) untilDeleted(ctx context.Context, uid types.UID) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	gone := p.store.deleted(uid)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel()
		<-done
	}
}

// runHook runs a lifecycle handler in or against the container, as the kubelet's
// handlerRunner, and returns the kubelet's message when it fails.
func (p *Worker) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		out, err := p.execHook(ctx, id, h.Exec.Command)
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, c.Name, podDesc(pod), err, out), err
		}
	case h.HTTPGet != nil:
		if err := p.httpHook(ctx, pod, c, h.HTTPGet); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, podDesc(pod), err), err
		}
	case h.Sleep != nil:
		if !sleepCtx(ctx, time.Duration(h.Sleep.Seconds)*time.Second) {
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, c.Name, podDesc(pod), err), err
		}
	default:
		err := fmt.Errorf("invalid handler: %v", h)
		return "Cannot run handler: " + err.Error(), err
	}
	return "", nil
}

// execHook runs a hook's command in the container with no timeout of its own, as the kubelet
// does (ctx bounds it), and returns its output; a non-zero exit is an error.
func (p *Worker) execHook(ctx context.Context, id string, cmd []string) (string, error) {
	resp, err := p.cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd})
	if err != nil {
		return "", fmt.Errorf("exec in container: %w", err)
	}
	out := string(resp.Stdout) + string(resp.Stderr)
	if resp.ExitCode != 0 {
		return out, fmt.Errorf("command '%s' exited with %d: %s", strings.Join(cmd, " "), resp.ExitCode, resp.Stderr)
	}
	return out, nil
}

// httpHook sends a hook's GET from the host, as the kubelet's lifecycle client: any answer
// will do (the status code is not checked), only a failed request fails the hook. An HTTPS
// hook answered in plain HTTP is sent again over HTTP, with a LifecycleHTTPFallback event.
func (p *Worker) httpHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, action *corev1.HTTPGetAction) error {
	req, err := prober.NewHTTPGetRequest(action, c, p.cfg.HostIP, "lifecycle")
	if err != nil {
		return err
	}
	client := prober.NewHTTPClient(p.host.DialTCP, 0)
	resp, err := client.Do(req.WithContext(ctx))
	discard(resp)
	if errors.Is(err, http.ErrSchemeMismatch) {
		retry := req.Clone(ctx)
		retry.URL.Scheme = "http"
		retry.Header.Del("Authorization")
		resp, httpErr := client.Do(retry)
		discard(resp)
		if httpErr == nil {
			p.recorder.Eventf(pod, corev1.EventTypeWarning, "LifecycleHTTPFallback", "request to HTTPS lifecycle hook %s got HTTP response, retry with HTTP succeeded", retry.URL.Host)
			err = nil
		}
	}
	return err
}

func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, prober.MaxHTTPBody))
	_ = resp.Body.Close()
}

// checkHealth kills a running container whose liveness (or startup) probe failed, as the
// kubelet's computePodActions: Unhealthy events came from the probe; here the Normal Killing
// event "Container <name> failed liveness probe, will be restarted", the stop with the
// probe's or the pod's grace period (and the preStop hook), and, unless the restart policy is
// Never, a new instance at once when the container is not in back-off since its previous
// exit (later tries wait out the back-off as after any exit). It reports when to look again
// and whether it acted.
func (p *Worker) checkHealth(ctx context.Context, s *podSync, c *corev1.Container, history []*runtimeapi.ContainerStatus) (time.Duration, bool) {
	pod := s.pod
	latest := history[0]
	reason := p.probes.KillReason(pod.UID, latest.Id)
	if reason == "" {
		return 0, false
	}
	failed := c.LivenessProbe
	if reason == "startup" {
		failed = c.StartupProbe
	}
	restart := pod.Spec.RestartPolicy != corev1.RestartPolicyNever || kubecontainer.IsSidecar(c)
	msg := fmt.Sprintf("Container %s failed %s probe", c.Name, reason)
	if restart {
		msg += ", will be restarted"
	}
	if err := p.killContainer(ctx, pod, c.Name, latest.Id, msg, killGrace(pod, failed)); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.Name).Warn("cannot kill a container that failed its " + reason + " probe")
		return retryAfterError, false
	}
	key := s.key(c)
	if !restart || len(history) > 1 && history[1].State == runtimeapi.ContainerState_CONTAINER_EXITED &&
		p.crashLoop.wait(key, time.Unix(0, history[1].FinishedAt)) > 0 {
		return 0, true
	}
	p.pruneHistory(ctx, s.rec, history)
	p.crashLoop.next(key)
	again, _ := p.createAndStart(ctx, s, c, kubecontainer.IsSidecar(c), latest.GetMetadata().GetAttempt()+1)
	return again, true
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
