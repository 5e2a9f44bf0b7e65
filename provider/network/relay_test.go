package network

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// hostDialer stands in for the host: it connects to a listener of the test, whatever port
// was asked, and records the addresses asked for.
type hostDialer struct {
	mu     sync.Mutex
	target string // "" refuses every dial
	asked  []string
}

func (d *hostDialer) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, addr)
	target := d.target
	d.mu.Unlock()
	if target == "" {
		return nil, errors.New("connect: connection refused")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", target)
}

func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// upstream is a server on the "host": it answers each connection with what it read, once
// the client has ended its writes, prefixed with "echo:".
func upstream(t *testing.T) (addr string, conns <-chan net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
			go func() {
				b, _ := io.ReadAll(c)
				_, _ = c.Write(append([]byte("echo:"), b...))
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().String(), ch
}

func startRelays(t *testing.T, d Dialer) *Relays {
	t.Helper()
	r := New(Config{ListenIP: "127.0.0.1", HostIP: "192.0.2.7", DialTimeout: 2 * time.Second}, d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func dial(t *testing.T, port int32) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func TestRelayBothWaysWithHalfClose(t *testing.T) {
	addr, _ := upstream(t)
	d := &hostDialer{target: addr}
	r := startRelays(t, d)
	port := freePort(t)
	if err := r.Set(context.Background(), "pod-a", []Port{{corev1.ProtocolTCP, port}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, port)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "echo:hello" {
		t.Fatalf("read %q, %v; want echo:hello", got, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := "192.0.2.7:" + strconv.Itoa(int(port)); len(d.asked) != 1 || d.asked[0] != want {
		t.Errorf("dialled %v on the host, want [%s]", d.asked, want)
	}
}

func TestRelayResetsWhenTheHostRefuses(t *testing.T) {
	r := startRelays(t, &hostDialer{})
	port := freePort(t)
	if err := r.Set(context.Background(), "pod-a", []Port{{corev1.ProtocolTCP, port}}); err != nil {
		t.Fatal(err)
	}
	// The reset may come before the client's connect returns, or at its first read.
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), 2*time.Second)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a refused dial on the host: %v, want a connection reset", err)
	}
}

func TestRelayEndsWhenTheHostSideDies(t *testing.T) {
	addr, conns := upstream(t)
	r := startRelays(t, &hostDialer{target: addr})
	port := freePort(t)
	if err := r.Set(context.Background(), "pod-a", []Port{{corev1.ProtocolTCP, port}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, port)
	var up net.Conn
	select {
	case up = <-conns:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the host")
	}
	_ = up.(*net.TCPConn).SetLinger(0)
	_ = up.Close() // the host's end is reset, as when the SSH connection is lost
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err) {
		t.Fatalf("read after the host's end died: %v, want the connection ended", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestRelayListenersFollowOwners(t *testing.T) {
	r := startRelays(t, &hostDialer{})
	ctx := context.Background()
	p1, p2 := freePort(t), freePort(t)
	tcp1, tcp2, udp1 := Port{corev1.ProtocolTCP, p1}, Port{corev1.ProtocolTCP, p2}, Port{corev1.ProtocolUDP, p1}
	if err := r.Set(ctx, "pod-a", []Port{tcp1, udp1}); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, "slice-b", []Port{tcp1, tcp2}); err != nil {
		t.Fatal(err)
	}
	assertListening(t, r, tcp1, tcp2)
	r.Remove(ctx, "pod-a")
	assertListening(t, r, tcp1, tcp2)
	if err := r.Set(ctx, "slice-b", []Port{tcp2}); err != nil {
		t.Fatal(err)
	}
	assertListening(t, r, tcp2)
	if _, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p1))), time.Second); err == nil {
		t.Errorf("port %d still accepts connections after its owners left", p1)
	}
	r.Remove(ctx, "slice-b")
	assertListening(t, r)
}

func assertListening(t *testing.T, r *Relays, want ...Port) {
	t.Helper()
	got := r.Listening()
	set := map[Port]bool{}
	for _, p := range want {
		set[p] = true
	}
	want = sorted(set)
	if len(got) != len(want) {
		t.Fatalf("listening on %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("listening on %v, want %v", got, want)
		}
	}
}

func TestRelayNamesAPortItCannotListenOn(t *testing.T) {
	r := startRelays(t, &hostDialer{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := int32(l.Addr().(*net.TCPAddr).Port)
	err = r.Set(context.Background(), "pod-a", []Port{{corev1.ProtocolTCP, taken}})
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Set on a port in use: %v, want EADDRINUSE", err)
	}
	l.Close()
	if err := r.Set(context.Background(), "pod-a", []Port{{corev1.ProtocolTCP, taken}}); err != nil {
		t.Fatalf("Set again once the port is free: %v", err)
	}
}

func TestRunClosesEverything(t *testing.T) {
	addr, _ := upstream(t)
	r := New(Config{ListenIP: "127.0.0.1", HostIP: "192.0.2.7"}, &hostDialer{target: addr})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	port := freePort(t)
	if err := r.Set(context.Background(), "pod-a", []Port{{corev1.ProtocolTCP, port}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, port) // relayed, idle: the upstream waits for its end
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Fatal("a relayed connection outlived Run")
	}
	if err := r.Set(context.Background(), "pod-b", []Port{{corev1.ProtocolTCP, port}}); err != nil || len(r.Listening()) != 0 {
		t.Fatalf("Set after Run: %v, listening %v; want nothing opened", err, r.Listening())
	}
}

// udpEcho answers each datagram with "echo:" and the datagram.
func udpEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}

// UDP ports are relayed through the UDP dialer (the tunnel), one association per client, and
// answers come back to the client that asked.
func TestRelayUDP(t *testing.T) {
	echo := udpEcho(t)
	var mu sync.Mutex
	var dialled []uint16
	r := New(Config{ListenIP: "127.0.0.1", HostIP: "192.0.2.7", UDP: func(port uint16) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, port)
		mu.Unlock()
		return net.Dial("udp", echo)
	}}, &hostDialer{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	port := freePort(t) // a free TCP port number is almost always a free UDP one on loopback
	if err := r.Set(context.Background(), "pod-a", []Port{{corev1.ProtocolUDP, port}}); err != nil {
		t.Fatal(err)
	}
	for _, client := range []string{"one", "two"} {
		c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		for range 2 {
			if _, err := c.Write([]byte(client)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "echo:"+client {
				t.Fatalf("client %s: answer %q, %v", client, buf[:n], err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialled) != 2 || dialled[0] != uint16(port) {
		t.Errorf("associations dialled for ports %v, want two (one per client) for %d", dialled, port)
	}
}
