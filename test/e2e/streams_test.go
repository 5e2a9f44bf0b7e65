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

	"github.com/creack/pty"
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
		interactiveShell(t, e, ns, pod.Name)
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
}

// interactiveShell drives `kubectl exec -it -- sh` through a pseudo-terminal as a person
// would: a prompt, a command typed, its output, exit.
func interactiveShell(t *testing.T, e *env, ns, pod string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), "exec", "-it", "-n", ns, pod, "--", "sh")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"), "TERM=dumb")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	out := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			if n > 0 {
				// busybox's line editor asks for the cursor position (DSR); a terminal answers.
				if strings.Contains(string(buf[:n]), "\x1b[6n") {
					_, _ = tty.Write([]byte("\x1b[1;1R"))
				}
				out <- string(buf[:n])
			}
			if err != nil {
				close(out)
				return
			}
		}
	}()
	var transcript strings.Builder
	expect := func(want string) bool {
		t.Helper()
		var seen strings.Builder
		for !strings.Contains(seen.String(), want) {
			select {
			case s, ok := <-out:
				if !ok {
					t.Fatalf("terminal closed before %q; transcript %q", want, transcript.String())
				}
				seen.WriteString(s)
				transcript.WriteString(s)
			case <-ctx.Done():
				t.Fatalf("no %q on the terminal; transcript %q", want, transcript.String())
			}
		}
		return true
	}
	send := func(line string) {
		t.Helper()
		if _, err := tty.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	expect("# ")
	send("echo answer=$((6*7))")
	expect("answer=42")
	// The terminal's size travels as a resize message after the session starts, as with the
	// kubelet; the shell sees it once it has arrived.
	sized := false
	for i := 0; i < 20 && !sized; i++ {
		send("echo size=$(stty size 2>/dev/null)=")
		var seen strings.Builder
		for !strings.Contains(seen.String(), "=\r\n") || !strings.Contains(seen.String(), "size=") {
			select {
			case s := <-out:
				seen.WriteString(s)
				transcript.WriteString(s)
			case <-ctx.Done():
				t.Fatalf("no answer to stty size; transcript %q", transcript.String())
			}
		}
		sized = strings.Contains(seen.String(), "size=40 100=")
		if !sized {
			time.Sleep(250 * time.Millisecond)
		}
	}
	if !sized {
		t.Errorf("the shell never saw the terminal's size 40x100; transcript %q", transcript.String())
	}
	send("exit 5")
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 5 {
		t.Errorf("interactive shell ended with %v, want exit status 5", err)
	}
}
