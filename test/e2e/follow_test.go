package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"testing"
)

// follower is a running kubectl whose output is read line by line.
type follower struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
}

// follow starts kubectl with args; its lines arrive on lines, which is closed when it ends.
func (e *env) follow(ctx context.Context, t *testing.T, args ...string) *follower {
	t.Helper()
	cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"))
	return startFollower(t, cmd)
}

// startFollower starts cmd and delivers its standard output line by line.
func startFollower(t *testing.T, cmd *exec.Cmd) *follower {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &follower{cmd: cmd, lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
		f.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return f
}

func (f *follower) wait() error { return <-f.done }
