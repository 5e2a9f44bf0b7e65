package tunnel

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satellite-vk/satellite/internal/sshdtest"
)

// TestIntegrationWire checks the frame format against Debian's sshd: a ping the host sends
// into the tun device arrives as [family 2][IPv4 packet], and a reply framed by AppendFrame
// reaches the host's ping.
func TestIntegrationWire(t *testing.T) {
	srv := sshdtest.Start(t)
	h := srv.Host(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dev, err := OpenDevice(ctx, h, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := h.Output(ctx, "ip addr add 169.254.9.1 peer 169.254.9.2 dev tun7 && ip link set tun7 up"); err != nil {
		t.Fatal(err)
	}
	ping := srv.Command(ctx, "busybox", "ping", "-c", "1", "-W", "5", "169.254.9.2")
	type result struct {
		out []byte
		err error
	}
	pingDone := make(chan result, 1)
	go func() {
		out, err := ping.CombinedOutput()
		pingDone <- result{out, err}
	}()
	defer func() { cancel(); <-pingDone }() // ends ping on an early failure too

	pkt := firstEchoRequest(t, dev)
	if err := dev.WritePacket(echoReply(pkt)); err != nil {
		t.Fatal(err)
	}
	r := <-pingDone
	pingDone <- r
	if r.err != nil {
		t.Fatalf("ping got no reply through the tunnel: %v: %s", r.err, r.out)
	}
}

// firstEchoRequest reads frames until an IPv4 echo request, checking each frame's family
// word (read below the Decoder) against its IP version: the host's kernel also sends IPv6
// router and multicast listener solicitations into a new device.
func firstEchoRequest(t *testing.T, dev *Device) []byte {
	t.Helper()
	buf := make([]byte, MaxPacket)
	for {
		head, err := dev.dec.r.Peek(headerLen + 1)
		if err != nil {
			t.Fatal(err)
		}
		af, version := binary.BigEndian.Uint32(head), head[headerLen]>>4
		n, err := dev.ReadPacket(buf)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("frame: family %d, IPv%d packet of %d bytes: %s...", af, version, n, hex.EncodeToString(buf[:min(n, 24)]))
		if want := map[byte]uint32{4: AFInet, 6: AFInet6}[version]; af != want {
			t.Fatalf("IPv%d packet labelled family %d, want %d", version, af, want)
		}
		if version == 4 && buf[9] == 1 && buf[20] == 8 {
			return buf[:n]
		}
	}
}

// echoReply turns an IPv4 ICMP echo request into its reply.
func echoReply(req []byte) []byte {
	p := append([]byte(nil), req...)
	copy(p[12:16], req[16:20])
	copy(p[16:20], req[12:16])
	p[20] = 0 // echo reply
	binary.BigEndian.PutUint16(p[22:24], 0)
	binary.BigEndian.PutUint16(p[22:24], checksum(p[20:]))
	return p // the IPv4 header checksum is unchanged by swapping the addresses
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// TestIntegrationOpen: Open steps over a leftover device, routes exactly the given range into
// the new one, refuses a range holding the host's address, and Close leaves neither.
func TestIntegrationOpen(t *testing.T) {
	srv := sshdtest.Start(t)
	h := srv.Host(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.Output(ctx, "ip tuntap add dev tun213 mode tun"); err != nil { // a leftover
		t.Fatal(err)
	}
	routes := []netip.Prefix{netip.MustParsePrefix("10.232.0.0/16")}

	_, err := Open(ctx, h, Config{Link: Link{Routes: []netip.Prefix{netip.MustParsePrefix("10.231.0.0/16")}}, SSHAddr: srv.Addr})
	if hostNet := netip.PrefixFrom(srv.Addr, 30).Masked().String(); !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), hostNet) {
		t.Fatalf("a range holding the host's network: %v, want a refusal naming %s", err, hostNet)
	}
	tun, err := Open(ctx, h, Config{Link: Link{Routes: routes}, SSHAddr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if tun.Name != "tun214" {
		t.Errorf("device %s, want tun214 (tun213 is taken)", tun.Name)
	}
	out := hostOutput(ctx, t, h, "ip route show dev "+tun.Name+"; ip -o addr show dev "+tun.Name+"; cat /sys/class/net/"+tun.Name+"/mtu")
	t.Logf("host after Open:\n%s", out)
	for _, want := range []string{"10.232.0.0/16 scope link", "inet 169.254.213.1 peer 169.254.213.2/32", strconv.Itoa(DefaultMTU)} {
		if !strings.Contains(out, want) {
			t.Errorf("host lacks %q", want)
		}
	}
	if n := strings.Count(hostOutput(ctx, t, h, "ip route show dev "+tun.Name), "\n"); n != 2 { // the range and the peer
		t.Errorf("%d routes into %s, want the range and the peer's", n, tun.Name)
	}
	if got, err := tun.Repair(ctx); err != nil || len(got) != 0 {
		t.Errorf("Repair of an intact tunnel: %q, %v; want nothing to put back", got, err)
	}
	hostOutput(ctx, t, h, "ip route del 10.232.0.0/16 dev "+tun.Name+"; ip addr flush dev "+tun.Name+"; ip link set dev "+tun.Name+" down")
	got, err := tun.Repair(ctx)
	if err != nil || strings.Join(got, " ") != "address up 10.232.0.0/16" {
		t.Errorf("Repair after the address, up state and route were removed: %q, %v", got, err)
	}
	if out := hostOutput(ctx, t, h, "ip route show exact 10.232.0.0/16 dev "+tun.Name); !strings.Contains(out, "10.232.0.0/16") {
		t.Errorf("the route is not back after Repair: %q", out)
	}
	if err := tun.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tun.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	after := hostOutput(ctx, t, h, "ls /sys/class/net; ip route show")
	if strings.Contains(after, tun.Name) || strings.Contains(after, "10.232.") {
		t.Fatalf("after Close the host still has the device or its route:\n%s", after)
	}
}

// TestIntegrationChannelCloseRemovesDevice: sshd deletes the (non-persistent) tun device
// when the channel closes, before any teardown command.
func TestIntegrationChannelCloseRemovesDevice(t *testing.T) {
	srv := sshdtest.Start(t)
	h := srv.Host(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dev, err := OpenDevice(ctx, h, 9)
	if err != nil {
		t.Fatal(err)
	}
	hostOutput(ctx, t, h, "test -e /sys/class/net/tun9")
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := h.Output(ctx, "test -e /sys/class/net/tun9"); err != nil {
			return // gone
		}
		select {
		case <-ctx.Done():
			t.Fatal("tun9 outlived its channel")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func hostOutput(ctx context.Context, t *testing.T, h Commander, cmd string) string {
	t.Helper()
	out, err := h.Output(ctx, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return string(out)
}
