package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// namespace creates a namespace for one test and deletes it when the test ends.
func (e *env) namespace(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "e2e-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-", ".", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}) })
	// Pods need the namespace's default service account (made by the controller manager).
	e.waitFor(t, 30*time.Second, "default service account in "+name, func(ctx context.Context) (bool, error) {
		_, err := e.client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	return name
}

// waitFor polls cond every 200 ms until it is true, failing the test at the deadline.
func (e *env) waitFor(t *testing.T, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// pod is a busybox pod for the target node, tolerating its taints and selecting it by name.
func (tg target) pod(name string, policy corev1.RestartPolicy, script string) *corev1.Pod {
	var tolerations []corev1.Toleration
	for _, taint := range tg.taints {
		kv, effect, _ := strings.Cut(taint, ":")
		k, v, _ := strings.Cut(kv, "=")
		tolerations = append(tolerations, corev1.Toleration{Key: k, Operator: corev1.TolerationOpEqual, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	grace := int64(2)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			// Satellite always uses the host's network; the reference kubelet is asked to.
			HostNetwork:                   true,
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": tg.node},
			Tolerations:                   tolerations,
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name:    "main",
				Image:   testImage,
				Command: []string{"sh", "-c", script},
			}},
		},
	}
}

const testImage = "localhost/satellite/busybox:1.36"

func (e *env) createPod(t *testing.T, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	p, err := e.client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPod waits until cond holds for the pod and returns the pod.
func (e *env) waitPod(t *testing.T, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	// A timeout says what the pod looked like last and what happened to it, since the
	// environment's logs go with it when CI takes it down.
	defer func() {
		if t.Failed() && pod != nil {
			t.Logf("pod %s/%s last seen: %s", ns, name, describePod(pod))
			if l, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name}); err == nil {
				for _, ev := range l.Items {
					t.Logf("  event %s %s (%s, x%d): %s", ev.Type, ev.Reason, ev.Source.Component, ev.Count, ev.Message)
				}
			}
		}
	}()
	e.waitFor(t, timeout, fmt.Sprintf("pod %s/%s: %s", ns, name, what), func(ctx context.Context) (bool, error) {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return cond(p), nil
	})
	return pod
}

// describePod is a pod's node, phase, conditions and container states on one line.
func describePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %q phase %q reason %q message %q;", p.Spec.NodeName, p.Status.Phase, p.Status.Reason, p.Status.Message)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s)", c.Type, c.Status, c.Reason)
	}
	for _, c := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		switch {
		case c.State.Running != nil:
			fmt.Fprintf(&b, "; %s running ready=%t", c.Name, c.Ready)
		case c.State.Terminated != nil:
			fmt.Fprintf(&b, "; %s terminated %d %s", c.Name, c.State.Terminated.ExitCode, c.State.Terminated.Reason)
		case c.State.Waiting != nil:
			fmt.Fprintf(&b, "; %s waiting %s %q", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
		}
		fmt.Fprintf(&b, " restarts=%d", c.RestartCount)
	}
	return b.String()
}

func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return len(p.Status.ContainerStatuses) > 0
}

// deletePod deletes the pod and waits until the API no longer has it.
func (e *env) deletePod(t *testing.T, ns, name string) {
	t.Helper()
	err := e.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	e.waitFor(t, 90*time.Second, "pod "+ns+"/"+name+" to be deleted", func(ctx context.Context) (bool, error) {
		_, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// host is the remote host of a target, reached over SSH the way Satellite reaches it.
type host struct {
	*remote.Host
	cri *remote.Runtime
	tg  target
}

func (e *env) host(t *testing.T, tg target) *host {
	t.Helper()
	if tg.reference {
		return nil
	}
	signer, err := remote.LoadSigner(e.get(t, "HOST_SSH_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	user, addr, _ := strings.Cut(e.get(t, "HOST_SSH"), "@")
	h, err := remote.NewHost(remote.Config{Addr: addr, User: user, Signer: signer, KnownHosts: e.get(t, "HOST_KNOWN_HOSTS")})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := remote.NewRuntime(h, remote.RuntimeConfig{Socket: tg.socket, CallTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(); _ = h.Close() })
	return &host{Host: h, cri: rt, tg: tg}
}

// leftovers lists what the host still has of a pod: sandboxes, containers and its log
// directory.
func (h *host) leftovers(ctx context.Context, ns, name string, uid types.UID) ([]string, error) {
	sel := map[string]string{"io.kubernetes.pod.uid": string(uid)}
	var left []string
	sbs, err := h.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, err
	}
	for _, s := range sbs.Items {
		left = append(left, "sandbox "+s.Id)
	}
	cs, err := h.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, err
	}
	for _, c := range cs.Containers {
		left = append(left, "container "+c.Id)
	}
	dir := h.tg.logDir + "/" + ns + "_" + name + "_" + string(uid)
	out, err := h.Output(ctx, "test -e "+remote.Quote(dir)+" && echo present || echo absent")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(out)) != "absent" {
		left = append(left, "log directory "+dir)
	}
	if h.tg.podDir != "" {
		vols := h.tg.podDir + "/" + ns + "_" + name + "_" + string(uid)
		out, err := h.Output(ctx, "test -e "+remote.Quote(vols)+" && echo present || echo absent; grep -c "+remote.Quote(" "+vols+"/")+" /proc/self/mounts || true")
		if err != nil {
			return nil, err
		}
		lines := strings.Fields(string(out))
		if len(lines) > 0 && lines[0] != "absent" {
			left = append(left, "volume directory "+vols)
		}
		if len(lines) > 1 && lines[1] != "0" {
			left = append(left, lines[1]+" mount(s) under "+vols)
		}
	}
	return left, nil
}

// assertClean fails the test unless the host has nothing left of the pod within a few
// seconds of its deletion from the API. (virtual-kubelet removes a pod from the API once its
// grace period has passed, which can be a moment before Satellite has finished removing a
// container that ignored SIGTERM from the host.)
func (e *env) assertClean(t *testing.T, h *host, ns, name string, uid types.UID) {
	t.Helper()
	if h == nil {
		return // the reference node: not Satellite's host
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Each look has its own time, so that the last one before the deadline reports what
		// is left rather than its own cut.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		left, err := h.leftovers(ctx, ns, name, uid)
		cancel()
		if err == nil && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("pod %s/%s deleted; the host cannot be inspected: %v", ns, name, err)
			}
			t.Errorf("pod %s/%s deleted but the host still has: %s", ns, name, strings.Join(left, ", "))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mustHaveOnHost fails unless the host runs the pod's sandbox and containers: the pod is
// really there, not only in the API.
func (e *env) mustHaveOnHost(t *testing.T, h *host, pod *corev1.Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	left, err := h.leftovers(ctx, pod.Namespace, pod.Name, pod.UID)
	if err != nil {
		t.Fatal(err)
	}
	var sb, ctr int
	for _, l := range left {
		switch {
		case strings.HasPrefix(l, "sandbox"):
			sb++
		case strings.HasPrefix(l, "container"):
			ctr++
		}
	}
	if sb != 1 || ctr < len(pod.Spec.Containers) {
		t.Errorf("pod %s/%s: host has %d sandboxes and %d containers, want 1 and %d", pod.Namespace, pod.Name, sb, ctr, len(pod.Spec.Containers))
	}
}
