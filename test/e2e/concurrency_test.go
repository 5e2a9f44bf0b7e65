package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// satelliteStats is Satellite's /debug/satellite.
type satelliteStats struct {
	Goroutines int `json:"goroutines"`
	SSH        struct {
		Connected bool  `json:"connected"`
		Dials     int64 `json:"dials"`
		Channels  int64 `json:"channels"`
	} `json:"ssh"`
}

func (tg target) stats(t *testing.T) satelliteStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := httpGet(ctx, "http://"+tg.debug+"/debug/satellite")
	if err != nil {
		t.Fatal(err)
	}
	var s satelliteStats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// execSession is `kubectl exec -i -- cat` kept open: what is written comes back.
type execSession struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *follower
}

func (e *env) catSession(ctx context.Context, t *testing.T, ns, pod string) *execSession {
	t.Helper()
	cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), "exec", "-i", "-n", ns, pod, "--", "cat")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := startFollower(t, cmd)
	return &execSession{cmd: cmd, stdin: stdin, out: f}
}

// 50 simultaneous streams (25 logs -f, 25 interactive execs) on one node all work over the one
// SSH connection; they end cleanly when their clients go away or their pod is deleted, and
// leave no goroutine, SSH channel or process behind.
func TestIntegrationConcurrentStreams(t *testing.T) {
	forEachTarget(t, func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		ticker := "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.5; done"
		pod := e.createPod(t, ns, tg.pod("busy", corev1.RestartPolicyAlways, ticker))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		// The first log read opens the connection's one SFTP session, which stays.
		e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--tail=1")
		base := tg.baseline(t)

		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		const n = 25
		logs := make([]*follower, n)
		execs := make([]*execSession, n)
		for i := 0; i < n; i++ {
			logs[i] = e.follow(ctx, t, "logs", "-f", "--tail=1", "-n", ns, pod.Name)
			execs[i] = e.catSession(ctx, t, ns, pod.Name)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := 0; i < n; i++ {
			wg.Add(2)
			go func(f *follower) {
				defer wg.Done()
				errs <- expectLines(ctx, f, func(l string) bool { return strings.HasPrefix(l, "tick-") }, 3)
			}(logs[i])
			go func(i int, s *execSession) {
				defer wg.Done()
				want := fmt.Sprintf("ping-%d", i)
				if _, err := fmt.Fprintln(s.stdin, want); err != nil {
					errs <- err
					return
				}
				errs <- expectLines(ctx, s.out, func(l string) bool { return l == want }, 1)
			}(i, execs[i])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		during := tg.stats(t)
		t.Logf("50 streams: %d SSH connection(s) opened in all, %d channels open (%d before), %d goroutines (%d before)",
			during.SSH.Dials, during.SSH.Channels, base.SSH.Channels, during.Goroutines, base.Goroutines)
		if during.SSH.Dials != base.SSH.Dials {
			t.Errorf("the streams opened %d new SSH connections; one carries them all", during.SSH.Dials-base.SSH.Dials)
		}

		// Clients go away: the followers are killed, the execs see their stdin end.
		for i := 0; i < n; i++ {
			_ = logs[i].cmd.Process.Kill()
			_ = execs[i].stdin.Close()
		}
		for i := 0; i < n; i++ {
			_ = logs[i].wait()
			if err := execs[i].out.wait(); err != nil {
				t.Errorf("exec %d did not end cleanly after its stdin closed: %v", i, err)
			}
		}
		e.settled(t, tg, base)
		if ps := e.mustKubectl(t, "", "exec", "-n", ns, pod.Name, "--", "ps", "-o", "comm"); strings.Contains(ps, "cat") {
			t.Errorf("exec processes left in the container:\n%s", ps)
		}

		// The pod goes away under open streams: they end by themselves.
		more := make([]*follower, 0, 10)
		for i := 0; i < 5; i++ {
			more = append(more, e.follow(ctx, t, "logs", "-f", "--tail=1", "-n", ns, pod.Name), e.catSession(ctx, t, ns, pod.Name).out)
		}
		for _, f := range more {
			if err := expectLines(ctx, f, func(string) bool { return true }, 0); err != nil {
				t.Error(err)
			}
		}
		e.deletePod(t, ns, pod.Name)
		for i, f := range more {
			select {
			case <-f.done:
			case <-time.After(30 * time.Second):
				t.Errorf("stream %d still open 30 s after its pod was deleted", i)
			}
		}
		e.settled(t, tg, base)
	})
}

// baseline is Satellite's quietest reading over two seconds: the fewest SSH channels and
// goroutines seen. A single reading may catch the node's periodic host check or a stats
// reading in flight, a channel and goroutines that a later look rightly no longer finds.
func (tg target) baseline(t *testing.T) satelliteStats {
	t.Helper()
	base := tg.stats(t)
	for i := 0; i < 4; i++ {
		time.Sleep(500 * time.Millisecond)
		s := tg.stats(t)
		base.SSH.Channels = min(base.SSH.Channels, s.SSH.Channels)
		base.Goroutines = min(base.Goroutines, s.Goroutines)
	}
	return base
}

// settled waits until Satellite's goroutines and SSH channels are back to the baseline (a few
// goroutines of slack for the HTTP server's idle connections); fewer is settled too.
func (e *env) settled(t *testing.T, tg target, base satelliteStats) {
	t.Helper()
	var now satelliteStats
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		now = tg.stats(t)
		if now.SSH.Channels <= base.SSH.Channels && now.Goroutines <= base.Goroutines+5 {
			t.Logf("settled: %d channels, %d goroutines (baseline %d, %d)", now.SSH.Channels, now.Goroutines, base.SSH.Channels, base.Goroutines)
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("leak: %d SSH channels and %d goroutines 30 s after the streams ended; baseline %d and %d",
				now.SSH.Channels, now.Goroutines, base.SSH.Channels, base.Goroutines)
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// expectLines waits for count lines that match.
func expectLines(ctx context.Context, f *follower, match func(string) bool, count int) error {
	seen := 0
	for seen < count {
		select {
		case l, ok := <-f.lines:
			if !ok {
				return fmt.Errorf("stream ended after %d of %d lines", seen, count)
			}
			if match(l) {
				seen++
			}
		case <-ctx.Done():
			return fmt.Errorf("%d of %d lines before the deadline", seen, count)
		}
	}
	return nil
}
