package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/satellite-vk/satellite/internal/netprobe"
)

// farHost measures Satellite as if its host were far away: 50 ms of round trip between
// Satellite and the host's sshd. The kernel here has no netem qdisc, so the delay comes from a
// TCP relay that holds every chunk 25 ms in each direction; Satellite is restarted to reach
// the host through it, and restarted as it was at the end (make dev-restart does the same).
func farHost(ctx context.Context, e env, p *pods, n, ref node, logMB, netMB int, t *table, nt *netTable) error {
	log("50 ms round trip to the host, through a delaying relay")
	relay, err := netprobe.NewRelay(e["HOST_SSH"][strings.Index(e["HOST_SSH"], "@")+1:], 25*time.Millisecond)
	if err != nil {
		return err
	}
	defer relay.Close()
	kh := filepath.Join(os.TempDir(), "satellite-bench-known_hosts")
	orig, err := os.ReadFile(e["HOST_KNOWN_HOSTS"])
	if err != nil {
		return err
	}
	key := strings.SplitN(strings.TrimSpace(string(orig)), " ", 2)[1]
	if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", relay.Port(), key)), 0o600); err != nil {
		return err
	}
	defer os.Remove(kh)
	args, err := satelliteArgs(e["SATELLITE_PID"])
	if err != nil {
		return err
	}
	for i := range args {
		switch {
		case i > 0 && args[i-1] == "--ssh":
			args[i] = fmt.Sprintf("root@127.0.0.1:%d", relay.Port())
		case i > 0 && args[i-1] == "--known-hosts":
			args[i] = kh
		}
	}
	args = append(args, "--host-ip", strings.Split(e["HOST_SSH"][strings.Index(e["HOST_SSH"], "@")+1:], ":")[0],
		// A log of logMB in one file, for the one-log throughput figure: no kubelet is compared
		// here, so Satellite need not rotate at the kubelet's 10 MiB.
		"--container-log-max-size", fmt.Sprintf("%dMi", 2*logMB+16))
	sat, err := restartSatellite(e, args)
	if err != nil {
		return err
	}
	defer func() {
		_ = sat.Process.Kill()
		_ = sat.Wait()
		out, err := exec.Command("bash", "hack/dev-restart.sh").CombinedOutput()
		if err != nil {
			log("restoring Satellite: %v: %s", err, out)
		}
	}()
	if err := waitReady(ctx, e, n); err != nil {
		return err
	}
	if !onlyNetwork {
		if err := farPods(ctx, e, p, n, logMB, t); err != nil {
			return err
		}
	}
	if netMB == 0 {
		return nil
	}
	return network(ctx, e, p, n, ref, "at 50 ms RTT: ", fmt.Sprintf("127.0.0.1:%d", relay.Port()), kh, netMB, false, nt)
}

func farPods(ctx context.Context, e env, p *pods, n node, logMB int, t *table) error {
	if err := p.startupFigure(ctx, t, "at 50 ms RTT: startup, 10 one at a time", n, "rtt", 10, false); err != nil {
		return err
	}
	if err := p.startupFigure(ctx, t, "at 50 ms RTT: startup, 30 at once", n, "rttburst", 30, true); err != nil {
		return err
	}
	if err := streams(ctx, e, n, "at 50 ms RTT: ", 10, 10, logMB, t); err != nil {
		return err
	}
	return oneLog(ctx, e, n, "at 50 ms RTT: ", logMB, t)
}

// oneLog measures the throughput of one `kubectl logs` reading a log of logMB whole, where
// streams' figure reads it as many requests of 8 MB, each paying its own round trips to the
// host before its first byte.
func oneLog(ctx context.Context, e env, n node, prefix string, logMB int, t *table) error {
	lines := logMB * 10000 // 100-byte lines
	script := logLines(lines) + "; touch /tmp/written; sleep 100000"
	name := "onelog-" + strings.ToLower(n.label)
	defer func() { _, _ = e.kubectl(context.Background(), "", "delete", "pod", "-n", ns, name, "--wait=false") }()
	if err := logWriter(ctx, e, n, name, script); err != nil {
		return err
	}
	start := time.Now()
	size, err := countLogBytes(ctx, e, name)
	if err != nil {
		return err
	}
	if want := int64(lines) * 100; size != want {
		return fmt.Errorf("one log: read %d bytes, want %d (rotated?)", size, want)
	}
	secs := time.Since(start).Seconds()
	t.set(prefix+"log throughput, one log (MiB/s)", n.label, fmt.Sprintf("%.1f (%d MB in %.1f s)", float64(size)/secs/(1<<20), size/1000000, secs))
	return nil
}

func satelliteArgs(pid string) ([]string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		return nil, fmt.Errorf("Satellite's command line: %w", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// restartSatellite stops the environment's Satellite and starts one with args.
func restartSatellite(e env, args []string) (*exec.Cmd, error) {
	pid := e["SATELLITE_PID"]
	if proc, err := os.FindProcess(stringToPid(pid)); err == nil {
		_ = proc.Signal(os.Interrupt)
		for i := 0; i < 50; i++ {
			if _, err := os.Stat("/proc/" + pid); err != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	logf, err := os.Create(filepath.Join("_output", "dev", "logs", "satellite-bench-rtt.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	return cmd, cmd.Start()
}

func stringToPid(s string) int {
	var n int
	fmt.Sscanf(s, "%d", &n)
	return n
}

func waitReady(ctx context.Context, e env, n node) error {
	for {
		out, _ := e.kubectl(ctx, "", "get", "node", n.name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if out == "True" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
