package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// When the host's link is cut, the node turns NotReady saying why, and logs and exec fail at
// once with an error that says the host is unreachable; when it returns, they work again.
// The test cuts the link of the shared host, so it runs alone.
func TestIntegrationHostUnreachable(t *testing.T) {
	e := loadEnv(t)
	tg := e.targets(t)[0]
	ns := e.namespace(t)
	pod := e.createPod(t, ns, tg.pod("idle", corev1.RestartPolicyAlways, "echo hello; exec sleep 3600"))
	e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)

	link := func(state string) {
		t.Helper()
		out, err := exec.Command("nsenter", "--net=/run/netns/"+e.get(t, "HOST_NETNS"), "ip", "link", "set", "sat-veth1", state).CombinedOutput()
		if err != nil {
			t.Fatalf("link %s: %v: %s", state, err, out)
		}
	}
	link("down")
	restored := false
	t.Cleanup(func() {
		if !restored {
			link("up")
		}
	})
	cut := time.Now()
	reason := e.waitNodeReady(t, tg.node, corev1.ConditionFalse, 45*time.Second)
	t.Logf("node NotReady %.1fs after the link was cut: %s", time.Since(cut).Seconds(), reason)
	if !strings.Contains(reason, "SSHUnreachable") {
		t.Errorf("NotReady reason %q does not name SSH", reason)
	}
	for _, args := range [][]string{
		{"logs", "-n", ns, pod.Name},
		{"exec", "-n", ns, pod.Name, "--", "true"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		_, err := e.kubectl(ctx, t, "", args...)
		cancel()
		took := time.Since(start)
		if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), ns, ""), "host unreachable over SSH") {
			t.Errorf("kubectl %s with the host cut off: %v, want an error saying it is unreachable", args[0], err)
		}
		t.Logf("kubectl %s failed after %v: %v", args[0], took.Round(time.Millisecond), err)
	}

	link("up")
	restored = true
	back := time.Now()
	e.waitNodeReady(t, tg.node, corev1.ConditionTrue, 45*time.Second)
	t.Logf("node Ready %.1fs after the link returned", time.Since(back).Seconds())
	if out := e.mustKubectl(t, "", "logs", "-n", ns, pod.Name); out != "hello\n" {
		t.Errorf("logs after the link returned: %q", out)
	}
	p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Status.ContainerStatuses[0]; c.RestartCount != 0 || c.State.Running == nil {
		t.Errorf("the container was disturbed by the cut: %+v", c)
	}
	e.deletePod(t, ns, pod.Name)
}

// waitNodeReady waits for the node's Ready condition to have status and returns its reason
// and message.
func (e *env) waitNodeReady(t *testing.T, node string, status corev1.ConditionStatus, timeout time.Duration) string {
	t.Helper()
	var why string
	e.waitFor(t, timeout, "node "+node+" Ready="+string(status), func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				why = c.Reason + ": " + c.Message
				return c.Status == status, nil
			}
		}
		return false, nil
	})
	return why
}
