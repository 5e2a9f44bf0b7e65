package tunnel

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fakeHost answers commands from a table keyed by the command's first words.
type fakeHost map[string]string

func (f fakeHost) Output(_ context.Context, cmd string) ([]byte, error) {
	for prefix, out := range f {
		if strings.HasPrefix(cmd, prefix) {
			return []byte(out), nil
		}
	}
	return nil, nil
}

func TestFreeUnit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ls    string
		first uint32
		want  uint32
	}{
		{"eth0 lo\n", 213, 213},
		{"eth0\nlo\ntun213\ntun214\ntun216\n", 213, 215},
		{"tun0 tun1", 0, 2},
	}
	for _, tt := range tests {
		got, err := freeUnit(context.Background(), fakeHost{"ls /sys/class/net": tt.ls}, tt.first)
		if err != nil || got != tt.want {
			t.Errorf("freeUnit(%q, %d) = %d, %v; want %d", tt.ls, tt.first, got, err, tt.want)
		}
	}
}

func TestParseNets(t *testing.T) {
	t.Parallel()
	out := `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.3.7/24 brd 10.0.3.255 scope global eth0\       valid_lft forever preferred_lft forever
7: tun213    inet 169.254.213.1 peer 169.254.213.2/32 scope global tun213\       valid_lft forever preferred_lft forever
client 198.51.100.4
`
	want := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.3.0/24"), netip.MustParsePrefix("198.51.100.4/32"),
	}
	// "inet 169.254.213.1 peer ..." has no prefix length on the local address: not parsed
	// as a prefix, and the link's own addresses are checked from Config anyway.
	if got := parseNets([]byte(out)); !slices.Equal(got, want) {
		t.Errorf("parseNets = %v, want %v", got, want)
	}
	if got := parseNets([]byte("client \n")); len(got) != 0 {
		t.Errorf("parseNets without SSH_CONNECTION = %v, want none", got)
	}
}

func TestCheckRoutes(t *testing.T) {
	t.Parallel()
	own := []netip.Prefix{netip.MustParsePrefix("10.0.3.0/24"), netip.MustParsePrefix("203.0.113.9/32"), netip.MustParsePrefix("198.51.100.4/32")}
	tests := []struct {
		routes string
		ok     bool
	}{
		{"10.96.0.0/12 10.244.0.0/16", true},
		{"10.0.0.0/8", false},      // holds the host's network
		{"10.0.3.128/25", false},   // inside the host's network, without its address
		{"203.0.113.0/24", false},  // its SSH address
		{"198.51.100.0/24", false}, // where Satellite connects from
		{"fd00::/8 10.96.0.0/12", true},
	}
	for _, tt := range tests {
		var routes []netip.Prefix
		for _, r := range strings.Fields(tt.routes) {
			routes = append(routes, netip.MustParsePrefix(r))
		}
		err := checkRoutes(routes, own)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrOverlap)) {
			t.Errorf("checkRoutes(%s) = %v, want ok %v", tt.routes, err, tt.ok)
		}
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	l := Link{
		Local: netip.MustParseAddr("169.254.213.1"), Peer: netip.MustParseAddr("169.254.213.2"), MTU: 1400,
		Routes: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("10.244.1.7/16")},
	}
	want := "set -e; ip addr replace 169.254.213.1 peer 169.254.213.2 dev tun213; ip link set dev tun213 mtu 1400 up" +
		"; ip route replace 10.96.0.0/12 dev tun213; ip route replace 10.244.0.0/16 dev tun213"
	if got := configureCmd("tun213", l); got != want {
		t.Errorf("configure:\n got %s\nwant %s", got, want)
	}
	want = "ip route del 10.96.0.0/12 dev tun213 2>/dev/null; ip route del 10.244.0.0/16 dev tun213 2>/dev/null; " +
		"if [ -e /sys/class/net/tun213 ]; then ip link del dev tun213; fi"
	if got := teardownCmd("tun213", l.Routes); got != want {
		t.Errorf("teardown:\n got %s\nwant %s", got, want)
	}
}
