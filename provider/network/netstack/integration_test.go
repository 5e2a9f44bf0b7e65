package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/satellite-vk/satellite/internal/netprobe"
	"github.com/satellite-vk/satellite/internal/sshdtest"
	"github.com/satellite-vk/satellite/remote"
	"github.com/satellite-vk/satellite/remote/tunnel"
)

// bulk is the size of each throughput measurement's stream.
const bulk = 256 << 20

// env is a tunnel from sshd's namespace (the "host") into a Stack in the test process,
// whose Dial sends every destination port to a listener of the test's.
type env struct {
	srv    *sshdtest.Server
	host   *remote.Host
	client *ssh.Client // a plain connection, on the same path as host's
	tun    *tunnel.Tunnel
	stack  *Stack
	probe  string // the netprobe binary
	ports  map[int]string
	mu     sync.Mutex
	dialed []string
}

func (e *env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	e.mu.Lock()
	e.dialed = append(e.dialed, network+" "+addr)
	e.mu.Unlock()
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	to, ok := e.ports[p]
	if !ok {
		return nil, fmt.Errorf("no test listener for %s", addr)
	}
	return (&net.Dialer{}).DialContext(ctx, network, to)
}

// run runs a command in the host's namespace and returns its combined output.
func (e *env) run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := e.srv.Command(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func buildProbe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "netprobe")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/satellite-vk/satellite/internal/netprobe/cmd/netprobe").CombinedOutput()
	if err != nil {
		t.Fatalf("build netprobe: %v: %s", err, out)
	}
	return bin
}

// listen starts a listener of the test's on loopback and returns its address.
func listen(t *testing.T, serve func(net.Listener)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ln)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func udpEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo: "), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func httpServe(ln net.Listener) {
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "satellite saw %s %s for %s", r.Method, r.URL.Path, r.Host)
	}))
}

func startEnv(t *testing.T, ctx context.Context, mtu int) *env {
	t.Helper()
	return startEnvAt(t, ctx, mtu, 0)
}

// startEnvAt starts the environment with delay added each way between the test's SSH
// connections (Satellite's and the plain one) and sshd.
func startEnvAt(t *testing.T, ctx context.Context, mtu int, delay time.Duration) *env {
	t.Helper()
	e := &env{srv: sshdtest.Start(t), probe: buildProbe(t)}
	addr := e.srv.SSHAddr()
	if delay > 0 {
		r, err := netprobe.NewRelay(addr, delay)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		addr = fmt.Sprintf("127.0.0.1:%d", r.Port())
	}
	e.host = e.srv.HostVia(t, addr)
	e.client = e.srv.DialVia(t, addr)
	serve := func(m netprobe.Mode) func(net.Listener) {
		return func(ln net.Listener) { _ = netprobe.Serve(ln, m, bulk) }
	}
	e.ports = map[int]string{
		80: listen(t, httpServe), 9: refusedAddr(t), 53: udpEcho(t),
		5001: listen(t, serve(netprobe.Sink)), 5002: listen(t, serve(netprobe.Source)), 5003: listen(t, serve(netprobe.Echo)),
	}
	routes := []netip.Prefix{netip.MustParsePrefix("10.232.0.0/16")}
	tun, err := tunnel.Open(ctx, e.host, tunnel.Config{Link: tunnel.Link{Routes: routes, MTU: mtu}, SSHAddr: e.srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	e.tun = tun
	if e.stack, err = New(tun.Device, Config{Ranges: routes, Dial: e.dial, MTU: uint32(mtu)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// runStack runs the stack until the returned stop is called; stop returns Run's error.
func runStack(s *Stack) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
}

var errNoOutput = errors.New("no output")

// fields parses netprobe's one line of numbers.
func fields(out string) ([]int64, error) {
	var nums []int64
	for _, f := range strings.Fields(out) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("netprobe said %q", out)
		}
		nums = append(nums, n)
	}
	if len(nums) == 0 {
		return nil, errNoOutput
	}
	return nums, nil
}
