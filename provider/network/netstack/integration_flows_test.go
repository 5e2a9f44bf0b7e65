package netstack

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satellite-vk/satellite/internal/sshdtest"
	"github.com/satellite-vk/satellite/remote/tunnel"
)

// TestIntegrationTunnel: programs on the host reach 10.232.0.10 through sshd's tun device,
// the SSH connection and the Stack, which dials the test's listeners: HTTP bytes arrive and
// come back, a half-closed stream completes, a refused port is reset at once, UDP is
// relayed, and after Close the host has neither the device nor the route.
func TestIntegrationTunnel(t *testing.T) {
	sshdtest.Requirements(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := startEnv(t, ctx, tunnel.DefaultMTU)
	stop := runStack(e.stack)
	defer stop()

	out, err := e.run(ctx, "busybox", "wget", "-q", "-O", "-", "http://10.232.0.10/hello")
	if want := "satellite saw GET /hello for 10.232.0.10"; err != nil || out != want {
		t.Errorf("wget through the tunnel: %q, %v; want %q", out, err, want)
	}
	out, err = e.run(ctx, e.probe, "-addr", "10.232.0.10:5001", "-mode", "source", "-n", strconv.Itoa(1<<20))
	if err != nil {
		t.Errorf("1 MiB then a half-close, answered by the listener's close: %v: %s", err, out)
	}
	start := time.Now()
	out, err = e.run(ctx, "busybox", "nc", "10.232.0.10", "9")
	t.Logf("nc to a refused port: %q after %v", out, time.Since(start).Round(time.Millisecond))
	if err == nil || !strings.Contains(out, "refused") {
		t.Errorf("nc to a refused destination: %q, %v; want connection refused (a reset)", out, err)
	}
	out, err = e.run(ctx, e.probe, "-addr", "10.232.0.10:53", "-mode", "udp")
	if want := "echo: satellite udp probe"; err != nil || out != want {
		t.Errorf("UDP through the tunnel: %q, %v; want %q", out, err, want)
	}
	out, err = e.run(ctx, "busybox", "ping", "-c", "1", "-W", "2", "10.232.0.10")
	t.Logf("ping 10.232.0.10 (answered by the stack itself, if at all): %v\n%s", err, out)

	e.mu.Lock()
	dialed := slices.Clone(e.dialed)
	e.mu.Unlock()
	for _, want := range []string{"tcp 10.232.0.10:80", "tcp 10.232.0.10:9", "udp 10.232.0.10:53"} {
		if !slices.Contains(dialed, want) {
			t.Errorf("Dial never called for %s; calls: %v", want, dialed)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := e.stack.Flows(); n != 0 {
		t.Errorf("%d flows open after Run returned", n)
	}
	if err := e.tun.Close(ctx); err != nil {
		t.Fatal(err)
	}
	host, err := e.host.Output(ctx, "ls /sys/class/net; ip route show")
	if err != nil || strings.Contains(string(host), e.tun.Name) || strings.Contains(string(host), "10.232.") {
		t.Errorf("host after Close (%v):\n%s", err, host)
	}
}
