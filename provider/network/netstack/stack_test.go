package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

func TestAccepted(t *testing.T) {
	t.Parallel()
	ranges := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00::/8")}
	v4 := func(dst string) []byte {
		p := make([]byte, 20)
		p[0] = 0x45
		a := netip.MustParseAddr(dst).As4()
		copy(p[16:], a[:])
		return p
	}
	v6 := func(dst string) []byte {
		p := make([]byte, 40)
		p[0] = 0x60
		a := netip.MustParseAddr(dst).As16()
		copy(p[24:], a[:])
		return p
	}
	tests := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"IPv4 in range", v4("10.96.0.10"), true},
		{"IPv4 outside", v4("10.244.0.5"), false},
		{"IPv6 in range", v6("fd00::1"), true},
		{"IPv6 outside", v6("2001:db8::1"), false},
		{"short", []byte{0x45, 0}, false},
		{"not IP", make([]byte, 40), false},
	}
	for _, tt := range tests {
		if _, ok := accepted(tt.pkt, ranges); ok != tt.ok {
			t.Errorf("%s: accepted %v, want %v", tt.name, ok, tt.ok)
		}
	}
}

func TestFlowsBound(t *testing.T) {
	t.Parallel()
	f := flows{max: 2}
	if !f.acquire() || !f.acquire() || f.acquire() {
		t.Fatal("the bound of 2 was not kept")
	}
	f.release()
	if !f.acquire() {
		t.Fatal("a released place was not given again")
	}
	f.close()
	f.release()
	if f.acquire() {
		t.Fatal("a flow admitted after close")
	}
	f.release()
	f.wait()
}

// memLink is one end of an in-memory point-to-point link.
type memLink struct {
	in, out chan []byte
	done    chan struct{}
	once    *sync.Once // shared by both ends: closing one closes the link
}

func memLinks() (*memLink, *memLink) {
	a, b := make(chan []byte, 256), make(chan []byte, 256)
	done, once := make(chan struct{}), new(sync.Once)
	return &memLink{in: a, out: b, done: done, once: once}, &memLink{in: b, out: a, done: done, once: once}
}

func (l *memLink) ReadPacket(buf []byte) (int, error) {
	select {
	case p := <-l.in:
		return copy(buf, p), nil
	case <-l.done:
		return 0, io.EOF
	}
}

func (l *memLink) WritePacket(pkt []byte) error {
	select {
	case l.out <- append([]byte(nil), pkt...):
		return nil
	case <-l.done:
		return net.ErrClosed
	}
}

func (l *memLink) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// hostStack is a plain gVisor stack at 169.254.213.1 standing for the remote host.
func hostStack(t *testing.T, link *memLink) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	ep := channel.New(256, 1400, "")
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatal(err)
	}
	addr := tcpip.AddrFrom4([4]byte{169, 254, 213, 1})
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr.WithPrefix()}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for pkt := ep.ReadContext(ctx); pkt != nil; pkt = ep.ReadContext(ctx) {
			v := pkt.ToView()
			_ = link.WritePacket(v.AsSlice())
			v.Release()
			pkt.DecRef()
		}
	})
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, err := link.ReadPacket(buf)
			if err != nil {
				return
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[:n])})
			ep.InjectInbound(ipv4.ProtocolNumber, pkt)
			pkt.DecRef()
		}
	})
	t.Cleanup(func() {
		cancel()
		_ = link.Close()
		wg.Wait()
		s.Close()
		s.Wait()
	})
	return s
}

func full(a string, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netip.MustParseAddr(a).As4()), Port: port}
}

var errNoRoute = errors.New("no test listener")

// TestStackInMemory runs the Stack against an in-memory host: TCP with a half-close each
// way, a reset for a refused dial, UDP both ways, and nothing for a destination outside
// the ranges.
func TestStackInMemory(t *testing.T) {
	t.Parallel()
	echo := listen(t, tcpEcho)
	udpAddr := udpEcho(t)
	refused := refusedAddr(t)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		to := map[string]string{"tcp 10.232.0.10:7": echo, "tcp 10.232.0.10:9": refused, "udp 10.232.0.10:53": udpAddr}[network+" "+addr]
		if to == "" {
			return nil, errNoRoute
		}
		return (&net.Dialer{}).DialContext(ctx, network, to)
	}
	mine, theirs := memLinks()
	host := hostStack(t, theirs)
	s, err := New(mine, Config{Ranges: []netip.Prefix{netip.MustParsePrefix("10.232.0.0/16")}, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	stop := runStack(s)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := gonet.DialContextTCP(ctx, host, full("10.232.0.10", 7), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello through the stack")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello through the stack" {
		t.Errorf("echo after a half-close: %q, %v", got, err)
	}
	_ = c.Close()

	if _, err := gonet.DialContextTCP(ctx, host, full("10.232.0.10", 9), ipv4.ProtocolNumber); err == nil || ctx.Err() != nil {
		t.Errorf("refused destination: %v, want a reset before the deadline", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if _, err := gonet.DialContextTCP(short, host, full("10.233.0.10", 7), ipv4.ProtocolNumber); err == nil {
		t.Error("a destination outside the ranges was connected")
	}

	checkUDP(t, host)
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := s.Flows(); n != 0 {
		t.Errorf("%d flows open after Run returned", n)
	}
}

// tcpEcho echoes each connection and half-closes after the peer has.
func tcpEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.Close()
	}
}

// checkUDP sends a datagram from the host to 10.232.0.10:53 and expects the echo.
func checkUDP(t *testing.T, host *stack.Stack) {
	t.Helper()
	u, err := gonet.DialUDP(host, nil, &tcpip.FullAddress{NIC: 1, Addr: full("10.232.0.10", 53).Addr, Port: 53}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := u.Write([]byte("dns?")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := u.Read(buf)
	if err != nil || string(buf[:n]) != "echo: dns?" {
		t.Errorf("UDP: %q, %v", buf[:n], err)
	}
}

// DialUDP sends from Self to the host's end of the link and gets the host's answer back: the
// way the cluster's datagrams reach a pod's UDP port on the host.
func TestDialUDPToHost(t *testing.T) {
	t.Parallel()
	mine, theirs := memLinks()
	host := hostStack(t, theirs)
	srv, err := gonet.DialUDP(host, &tcpip.FullAddress{NIC: 1, Addr: full("169.254.213.1", 5300).Addr, Port: 5300}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	s, err := New(mine, Config{Ranges: []netip.Prefix{netip.MustParsePrefix("10.232.0.0/16")}, Self: netip.MustParseAddr("169.254.213.2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DialUDP(netip.MustParseAddrPort("169.254.213.1:5300")); !errors.Is(err, ErrNotRunning) {
		t.Errorf("DialUDP before Run: %v, want ErrNotRunning", err)
	}
	stop := runStack(s)
	defer stop()
	var c net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = s.DialUDP(netip.MustParseAddrPort("169.254.213.1:5300")); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // Run is starting
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "echo:ping" {
		t.Errorf("answer %q, %v; want echo:ping", buf[:n], err)
	}
}
