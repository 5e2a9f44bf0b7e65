package netstack

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/satellite-vk/satellite/internal/netprobe"
	"github.com/satellite-vk/satellite/internal/sshdtest"
	"github.com/satellite-vk/satellite/remote/tunnel"
)

// TestIntegrationThroughput prints, for one link in one run, a 256 MiB stream each way and
// 300 small round trips through the tunnel and through a plain direct-tcpip channel. It
// asserts nothing about the figures.
func TestIntegrationThroughput(t *testing.T) {
	sshdtest.Requirements(t)
	if raceEnabled {
		t.Skip("throughput under the race detector measures the detector: run without -race")
	}
	// 16000 is the default (tunnel.DefaultMTU); 1400, a usual link's, shows the per-packet
	// cost that chose it.
	for _, mtu := range []int{tunnel.DefaultMTU, 1400} {
		t.Run(fmt.Sprintf("mtu=%d", mtu), func(t *testing.T) { measure(t, mtu) })
	}
}

// TestIntegrationThroughputFar prints the same with 50 ms of round trip between Satellite
// and sshd (a relay holding every chunk 25 ms each way), as a host far from the cluster has.
// It fails only if a stream does not finish.
func TestIntegrationThroughputFar(t *testing.T) {
	sshdtest.Requirements(t)
	if raceEnabled {
		t.Skip("throughput under the race detector measures the detector: run without -race")
	}
	measureAt(t, tunnel.DefaultMTU, 25*time.Millisecond)
}

func measure(t *testing.T, mtu int) { measureAt(t, mtu, 0) }

func measureAt(t *testing.T, mtu int, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := startEnvAt(t, ctx, mtu, delay)
	stop := runStack(e.stack)
	defer stop()

	var tun, direct [3]string
	var err error
	if tun, err = e.tunnelFigures(ctx); err != nil {
		t.Fatal(err)
	}
	for port, mode := range map[string]netprobe.Mode{"6001": netprobe.Sink, "6002": netprobe.Source, "6003": netprobe.Echo} {
		e.serveOnHost(t, ctx, "127.0.0.1:"+port, mode)
	}
	if direct, err = directFigures(e.client); err != nil {
		t.Fatal(err)
	}
	t.Logf("%-22s %-34s %-34s %s", "path", "host -> Satellite", "Satellite -> host", "64-byte round trips")
	t.Logf("%-22s %-34s %-34s %s", "tunnel + netstack", tun[0], tun[1], tun[2])
	t.Logf("%-22s %-34s %-34s %s", "direct-tcpip channel", direct[0], direct[1], direct[2])
}

func rate(n, ns int64) string {
	d := time.Duration(ns)
	return fmt.Sprintf("%.1f MiB/s (%v)", float64(n)/(1<<20)/d.Seconds(), d.Round(time.Millisecond))
}

func rtts(p50, p99 time.Duration) string {
	return fmt.Sprintf("p50 %v p99 %v", p50.Round(time.Microsecond), p99.Round(time.Microsecond))
}

// tunnelFigures runs netprobe on the host against the test's listeners through the tunnel.
func (e *env) tunnelFigures(ctx context.Context) ([3]string, error) {
	var res [3]string
	runs := [][]string{
		{"-addr", "10.232.0.10:5001", "-mode", "source", "-n", strconv.Itoa(bulk)},
		{"-addr", "10.232.0.10:5002", "-mode", "sink"},
		{"-addr", "10.232.0.10:5003", "-mode", "rtt", "-n", "300"},
	}
	for i, args := range runs {
		out, err := e.run(ctx, e.probe, args...)
		if err != nil {
			return res, fmt.Errorf("netprobe %v: %w: %s", args, err, out)
		}
		f, err := fields(out)
		if err != nil || len(f) != 2 {
			return res, fmt.Errorf("netprobe %v: %q", args, out)
		}
		if i < 2 {
			res[i] = rate(f[0], f[1])
		} else {
			res[i] = rtts(time.Duration(f[0]), time.Duration(f[1]))
		}
	}
	return res, nil
}

// serveOnHost runs a netprobe server on the host until the test ends.
func (e *env) serveOnHost(t *testing.T, ctx context.Context, addr string, mode netprobe.Mode) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	cmd := e.srv.Command(ctx, e.probe, "-listen", addr, "-mode", string(mode), "-n", strconv.Itoa(bulk))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("netprobe server on %s: %q, %v", addr, line, err)
	}
}

// directFigures measures the same through direct-tcpip channels to the host's netprobe.
func directFigures(c *ssh.Client) ([3]string, error) {
	var res [3]string
	conn := func(port string) (net.Conn, error) { return c.Dial("tcp", "127.0.0.1:"+port) }
	up, err := conn("6002")
	if err != nil {
		return res, err
	}
	n, d, err := netprobe.Receive(up)
	_ = up.Close()
	if err != nil || n != bulk {
		return res, fmt.Errorf("direct host -> Satellite: %d bytes, %v", n, err)
	}
	res[0] = rate(n, d.Nanoseconds())
	down, err := conn("6001")
	if err != nil {
		return res, err
	}
	d, err = netprobe.Send(down, bulk)
	_ = down.Close()
	if err != nil {
		return res, fmt.Errorf("direct Satellite -> host: %w", err)
	}
	res[1] = rate(bulk, d.Nanoseconds())
	echo, err := conn("6003")
	if err != nil {
		return res, err
	}
	defer echo.Close()
	r, err := netprobe.RoundTrips(echo, 300, 64)
	if err != nil {
		return res, err
	}
	res[2] = rtts(netprobe.Percentile(r, 50), netprobe.Percentile(r, 99))
	return res, nil
}
