package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Commander runs a shell command on the host as Satellite's user (root) and returns its
// standard output; *remote.Host is one. Every command the tunnel needs is in this file.
type Commander interface {
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// freeUnit returns the lowest unit n >= first for which the host has no interface tun<n>.
// A device left by an earlier connection (sshd removes it only when that session ends) is
// stepped over rather than reused.
func freeUnit(ctx context.Context, c Commander, first uint32) (uint32, error) {
	out, err := c.Output(ctx, "ls /sys/class/net")
	if err != nil {
		return 0, fmt.Errorf("list host interfaces: %w", err)
	}
	used := map[string]bool{}
	for _, name := range strings.Fields(string(out)) {
		used[name] = true
	}
	for n := first; n < first+1024 && n < UnitAny; n++ {
		if !used[DeviceName(n)] {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no free tun unit from %d on the host", first)
}

// DeviceName is the host's interface name for unit n, as sshd's sys_tun_open names it.
func DeviceName(n uint32) string { return "tun" + strconv.FormatUint(uint64(n), 10) }

// hostAddrs lists the host's interface addresses (`ip -o addr`).
func hostAddrs(ctx context.Context, c Commander) ([]netip.Addr, error) {
	out, err := c.Output(ctx, "ip -o addr show")
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	return parseAddrs(out), nil
}

// parseAddrs reads the address of each `ip -o addr` line ("2: eth0 inet 10.0.0.5/24 ...").
func parseAddrs(out []byte) []netip.Addr {
	var addrs []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" && f[i] != "inet6" {
				continue
			}
			if p, err := netip.ParsePrefix(f[i+1]); err == nil {
				addrs = append(addrs, p.Addr())
			}
			break
		}
	}
	return addrs
}

// checkRoutes refuses a range that would take the host's own traffic into the tunnel: one
// holding an address of the host, its SSH address or the link's own addresses.
func checkRoutes(routes []netip.Prefix, own []netip.Addr) error {
	for _, r := range routes {
		for _, a := range own {
			if a.IsValid() && r.Contains(a) {
				return fmt.Errorf("route %s contains the host's address %s", r, a)
			}
		}
	}
	return nil
}

// configureCmd addresses the device, brings it up and routes exactly the given ranges
// into it; `replace` makes it safe to run again and moves a route from a stale device.
func configureCmd(dev string, l Link) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set -e; ip addr replace %s peer %s dev %s; ip link set dev %s mtu %d up",
		l.Local, l.Peer, dev, dev, l.MTU)
	for _, r := range l.Routes {
		fmt.Fprintf(&b, "; ip route replace %s dev %s", r.Masked(), dev)
	}
	return b.String()
}

// teardownCmd removes the routes and the device; what is already gone is not an error
// (sshd deletes a non-persistent tun device when its channel closes, and its routes go
// with it).
func teardownCmd(dev string, routes []netip.Prefix) string {
	var b strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&b, "ip route del %s dev %s 2>/dev/null; ", r.Masked(), dev)
	}
	fmt.Fprintf(&b, "if [ -e /sys/class/net/%s ]; then ip link del dev %s; fi", dev, dev)
	return b.String()
}
