package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
)

// terminal is kubectl running on a pseudo-terminal, as a person runs it.
type terminal struct {
	t          *testing.T
	ctx        context.Context
	cmd        *exec.Cmd
	tty        *os.File
	out        chan string
	transcript strings.Builder
}

func (e *env) terminal(ctx context.Context, t *testing.T, env []string, args ...string) *terminal {
	t.Helper()
	cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"), "TERM=dumb"), env...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, ctx: ctx, cmd: cmd, tty: tty, out: make(chan string, 256)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			if n > 0 {
				// busybox's line editor asks for the cursor position (DSR); a terminal answers.
				if strings.Contains(string(buf[:n]), "\x1b[6n") {
					_, _ = tty.Write([]byte("\x1b[1;1R"))
				}
				term.out <- string(buf[:n])
			}
			if err != nil {
				close(term.out)
				return
			}
		}
	}()
	t.Cleanup(func() { _ = tty.Close() })
	return term
}

// expect reads the terminal until want appears.
func (term *terminal) expect(want string) {
	term.t.Helper()
	var seen strings.Builder
	for !strings.Contains(seen.String(), want) {
		select {
		case s, ok := <-term.out:
			if !ok {
				term.t.Fatalf("terminal closed before %q; transcript %q", want, term.transcript.String())
			}
			seen.WriteString(s)
			term.transcript.WriteString(s)
		case <-term.ctx.Done():
			term.t.Fatalf("no %q on the terminal; transcript %q", want, term.transcript.String())
		}
	}
}

func (term *terminal) send(line string) {
	term.t.Helper()
	if _, err := term.tty.Write([]byte(line + "\n")); err != nil {
		term.t.Fatal(err)
	}
}

// waitSize asks the shell for its terminal size until it reports rows x cols: the size
// travels as a resize message and arrives a moment after it changes.
func (term *terminal) waitSize(rows, cols int) {
	term.t.Helper()
	want := fmt.Sprintf("size=%d %d=", rows, cols)
	for i := 0; i < 40; i++ {
		term.send("echo size=$(stty size 2>/dev/null)=")
		var seen strings.Builder
		deadline := time.After(2 * time.Second)
	read:
		for {
			select {
			case s := <-term.out:
				seen.WriteString(s)
				term.transcript.WriteString(s)
				if strings.Contains(seen.String(), want) {
					return
				}
			case <-deadline:
				break read
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	term.t.Fatalf("the shell never saw the terminal size %dx%d; transcript %q", rows, cols, term.transcript.String())
}

// exitCode waits for kubectl and returns its exit code.
func (term *terminal) exitCode() int {
	term.t.Helper()
	err := term.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		term.t.Fatalf("kubectl: %v", err)
	}
	return 0
}

// protocols are kubectl's two streaming protocols: WebSocket (its default since 1.30) and
// SPDY (what older clients use).
var protocols = []struct{ name, env string }{
	{"websocket", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true"},
	{"spdy", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"},
}

// kubectl exec over both protocols: exit codes, stdin up to its EOF, and an interactive shell
// whose terminal is resized while it runs.
func TestIntegrationExecProtocols(t *testing.T) {
	e := loadEnv(t)
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := e.createPod(t, ns, tg.pod("exec", corev1.RestartPolicyAlways, "exec sleep 3600"))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		for _, proto := range protocols {
			t.Run(proto.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				run := func(stdin string, args ...string) (string, error) {
					cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), append([]string{"exec", "-n", ns, pod.Name}, args...)...)
					cmd.Env = append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"), proto.env)
					cmd.Stdin = strings.NewReader(stdin)
					out, err := cmd.Output()
					return string(out), err
				}
				_, err := run("", "--", "sh", "-c", "exit 7")
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 7 {
					t.Errorf("exit 7: %v", err)
				}
				// wc sees the end of stdin and only then answers.
				if out, err := run("a\nb\nc\n", "-i", "--", "wc", "-l"); err != nil || strings.TrimSpace(out) != "3" {
					t.Errorf("stdin to EOF: %q, %v", out, err)
				}
				if out, err := run("", "--", "sh", "-c", "echo out; echo err >&2"); err != nil || out != "out\n" {
					t.Errorf("stdout only: %q, %v", out, err)
				}

				term := e.terminal(ctx, t, []string{proto.env}, "exec", "-it", "-n", ns, pod.Name, "--", "sh")
				term.expect("# ")
				term.send("echo answer=$((6*7))")
				term.expect("answer=42")
				term.waitSize(40, 100)
				if err := pty.Setsize(term.tty, &pty.Winsize{Rows: 24, Cols: 61}); err != nil {
					t.Fatal(err)
				}
				_ = term.cmd.Process.Signal(sigwinch)
				term.waitSize(24, 61)
				term.send("exit 5")
				if code := term.exitCode(); code != 5 {
					t.Errorf("interactive shell exit code %d, want 5", code)
				}
			})
		}
		e.deletePod(t, ns, pod.Name)
	})
}

// kubectl attach reaches a running container's own process, on its terminal.
func TestIntegrationAttach(t *testing.T) {
	e := loadEnv(t)
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := tg.pod("attach", corev1.RestartPolicyNever, "")
		pod.Spec.Containers[0].Command = []string{"sh"}
		pod.Spec.Containers[0].Stdin, pod.Spec.Containers[0].TTY = true, true
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		term := e.terminal(ctx, t, nil, "attach", "-it", "-n", ns, pod.Name)
		term.send("echo attached-$((2+3))")
		term.expect("attached-5")
		term.send("exit 3")
		term.exitCode() // kubectl reports the session's end; the pod says how the process ended
		p := e.waitPod(t, ns, pod.Name, 30*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if c := p.Status.ContainerStatuses[0].State.Terminated; c == nil || c.ExitCode != 3 {
			t.Errorf("attached shell's exit: %+v, want exit code 3", c)
		}
		e.deletePod(t, ns, pod.Name)
	})
}

// kubectl port-forward reaches a port the pod listens on, for several connections at once and
// large transfers.
func TestIntegrationPortForward(t *testing.T) {
	e := loadEnv(t)
	ports := map[string]int{"containerd2": 18081, "containerd1.6": 18082, "kubelet": 18083}
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		port := ports[tg.name]
		script := fmt.Sprintf("mkdir -p /www && head -c 20000000 /dev/urandom > /www/big && sha256sum /www/big | cut -d' ' -f1 > /www/big.sha && httpd -f -p 127.0.0.1:%d -h /www", port)
		pod := e.createPod(t, ns, tg.pod("pf", corev1.RestartPolicyAlways, script))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// kubectl port-forward gives up on a connection refused: start it once the pod serves.
		e.waitFor(t, 60*time.Second, "the pod's server", func(ctx context.Context) (bool, error) {
			out, err := e.kubectl(ctx, t, "", "exec", "-n", ns, pod.Name, "--", "wget", "-q", "-O-", fmt.Sprintf("http://127.0.0.1:%d/big.sha", port))
			return len(strings.TrimSpace(out)) == 64, err
		})
		local := port + 10000
		f := e.follow(ctx, t, "port-forward", "-n", ns, "pod/"+pod.Name, fmt.Sprintf("%d:%d", local, port))
		base := fmt.Sprintf("http://127.0.0.1:%d", local)
		var want string
		e.waitFor(t, 30*time.Second, "the forwarded port to answer", func(ctx context.Context) (bool, error) {
			b, err := httpGet(ctx, base+"/big.sha")
			want = strings.TrimSpace(string(b))
			return err == nil && len(want) == 64, err
		})
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		for i := 0; i < 5; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := httpGet(ctx, base+"/big")
				if err != nil {
					errs <- err
					return
				}
				sum := sha256.Sum256(b)
				if got := hex.EncodeToString(sum[:]); got != want || len(b) != 20000000 {
					errs <- fmt.Errorf("got %d bytes with sha256 %s, want 20000000 bytes with %s", len(b), got, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		_ = f.cmd.Process.Kill()
		e.deletePod(t, ns, pod.Name)
	})
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// kubectl cp (exec with tar) copies a 100 MB file both ways unchanged.
func TestIntegrationCopy(t *testing.T) {
	e := loadEnv(t)
	src := filepath.Join(t.TempDir(), "big")
	data := make([]byte, 100<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := e.createPod(t, ns, tg.pod("cp", corev1.RestartPolicyAlways, "exec sleep 3600"))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		e.mustKubectl(t, "", "cp", src, ns+"/"+pod.Name+":/tmp/big")
		if got := e.mustKubectl(t, "", "exec", "-n", ns, pod.Name, "--", "sha256sum", "/tmp/big"); !strings.HasPrefix(got, want) {
			t.Errorf("in the pod: sha256 %q, want %s", got, want)
		}
		back := filepath.Join(t.TempDir(), "back")
		e.mustKubectl(t, "", "cp", ns+"/"+pod.Name+":/tmp/big", back)
		b, err := os.ReadFile(back)
		if err != nil {
			t.Fatal(err)
		}
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != want {
			t.Errorf("copied back: %d bytes, sha256 differs", len(b))
		}
		e.deletePod(t, ns, pod.Name)
	})
}
