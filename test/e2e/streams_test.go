package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// kubectl logs returns exactly the lines written; logs -f streams a line written after it
// started and ends by itself when the container ends.
func TestIntegrationLogs(t *testing.T) {
	e := loadEnv(t)
	runTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		// stdout and stderr reach the log through two pipes: the pause keeps their order.
		script := "echo first; printf 'no newline at first'; echo ' then newline'; sleep 0.5; echo second >&2; " +
			"while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after-follow; sleep 1"
		pod := e.createPod(t, ns, tg.pod("logs", corev1.RestartPolicyNever, script))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		e.waitFor(t, 10*time.Second, "the first lines in the log", func(ctx context.Context) (bool, error) {
			out, err := e.kubectl(ctx, t, "", "logs", "-n", ns, pod.Name)
			return out == "first\nno newline at first then newline\nsecond\n", err
		})
		if out := e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--tail=1"); out != "second\n" {
			t.Errorf("logs --tail=1 = %q", out)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), "logs", "-f", "-n", ns, pod.Name)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		readUntil(t, r, "second")
		e.mustKubectl(t, "", "exec", "-n", ns, pod.Name, "--", "touch", "/tmp/go")
		readUntil(t, r, "after-follow")
		done := make(chan error, 1)
		go func() { _, _ = io.Copy(io.Discard, r); done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("logs -f ended with %v", err)
			}
		case <-ctx.Done():
			t.Error("logs -f did not end after the container ended")
		}
		e.waitPod(t, ns, pod.Name, 30*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
}

// hostname is the name of the machine the pod runs on.
func hostname(ctx context.Context, h *host) ([]byte, error) {
	if h == nil {
		n, err := os.Hostname() // the reference node is this machine
		return []byte(n), err
	}
	return h.Output(ctx, "hostname")
}

func readUntil(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	var seen strings.Builder
	for {
		line, err := r.ReadString('\n')
		seen.WriteString(line)
		if strings.Contains(line, want) {
			return
		}
		if err != nil {
			t.Fatalf("stream ended (%v) before %q; got %q", err, want, seen.String())
		}
	}
}

// kubectl exec runs commands in the container on the host: output, exit codes, stdin, and an
// interactive shell on a terminal.
func TestIntegrationExec(t *testing.T) {
	e := loadEnv(t)
	runTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		pod := e.createPod(t, ns, tg.pod("exec", corev1.RestartPolicyAlways, "exec sleep 3600"))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		want, err := hostname(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.mustKubectl(t, "", "exec", "-n", ns, pod.Name, "--", "cat", "/etc/hostname"); strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("exec cat /etc/hostname = %q, want the host's name %q (host network)", got, want)
		}
		_, err = e.kubectl(ctx, t, "", "exec", "-n", ns, pod.Name, "--", "sh", "-c", "exit 7")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 7 {
			t.Errorf("exec exit 7: kubectl error %v, want exit status 7", err)
		}
		if got := e.mustKubectl(t, "piped through\n", "exec", "-i", "-n", ns, pod.Name, "--", "cat"); got != "piped through\n" {
			t.Errorf("exec -i cat = %q", got)
		}
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
}
