package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

// hostNets lists the host's own networks: its interfaces' prefixes (`ip -o addr`) and the
// address Satellite's SSH connection comes from as the host sees it (sshd's SSH_CONNECTION):
// replies to it must never go into the tunnel.
func hostNets(ctx context.Context, c Commander) ([]netip.Prefix, error) {
	out, err := c.Output(ctx, `ip -o addr show; echo "client ${SSH_CONNECTION%% *}"`)
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	return parseNets(out), nil
}

// parseNets reads the prefix of each `ip -o addr` line ("2: eth0 inet 10.0.0.5/24 ...") and
// the SSH client's address ("client 203.0.113.9"), as a single-address prefix.
func parseNets(out []byte) []netip.Prefix {
	var nets []netip.Prefix
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "client" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				nets = append(nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			}
			continue
		}
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" && f[i] != "inet6" {
				continue
			}
			if p, err := netip.ParsePrefix(f[i+1]); err == nil {
				nets = append(nets, p.Masked())
			}
			break
		}
	}
	return nets
}

// ErrOverlap is why a route is refused: it would capture the host's own traffic.
var ErrOverlap = errors.New("a cluster range overlaps the host's own networks")

// checkRoutes refuses a range that would take the host's own traffic into the tunnel: one
// overlapping a network the host is on, or holding its SSH address, the address Satellite
// connects from, or the link's own addresses.
func checkRoutes(routes []netip.Prefix, own []netip.Prefix) error {
	for _, r := range routes {
		for _, n := range own {
			if n.IsValid() && r.Overlaps(n) {
				return fmt.Errorf("%w: route %s overlaps the host's %s", ErrOverlap, r, n)
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

// repairCmd checks the device's address, up state and routes, restores what is missing
// and prints "repaired:" followed by what it restored.
func repairCmd(dev string, l Link) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set -e; r=; ip -o addr show dev %s | grep -qF 'inet %s peer %s/' || { ip addr replace %s peer %s dev %s; r=\"$r address\"; }",
		dev, l.Local, l.Peer, l.Local, l.Peer, dev)
	fmt.Fprintf(&b, "; ip link show dev %s | grep -q '[<,]UP[,>]' || { ip link set dev %s up; r=\"$r up\"; }", dev, dev)
	for _, r := range l.Routes {
		fmt.Fprintf(&b, "; [ -n \"$(ip route show exact %s dev %s)\" ] || { ip route replace %s dev %s; r=\"$r %s\"; }", r.Masked(), dev, r.Masked(), dev, r.Masked())
	}
	b.WriteString("; echo \"repaired:$r\"")
	return b.String()
}

// parseRepaired reads repairCmd's output.
func parseRepaired(out string) []string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "repaired:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
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
