package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// Host is what a tunnel needs of the remote host: commands and channels on one SSH
// connection. *remote.Host is one.
type Host interface {
	Commander
	Opener
}

// DefaultMTU is the tun device's MTU. The packets never meet a 1500-byte path: each is one
// SSH message inside the connection's own TCP stream, so the bound is sshd's, not a
// link's. sshd reads the device into a CHAN_RBUF (16384-byte) buffer and refuses, by
// closing the channel, a packet longer than that less the 4-byte address family it
// prepends (port-tun.c sys_tun_infilter): 16380. Every packet costs one turn of sshd's
// event loop, so the largest safe MTU carries the most per turn; pods share the host's
// network namespace, so their segments to the cluster are this large too.
// TestIntegrationThroughput measured one stream at 1400 and at 16000: host to Satellite
// 38 and 193 MiB/s, Satellite to host 26 and 92 MiB/s.
const DefaultMTU = 16000

// DefaultLocal and DefaultPeer are the device's point-to-point pair unless a Link says
// otherwise: link-local, so that no host network can hold them.
var (
	DefaultLocal = netip.MustParseAddr("169.254.213.1")
	DefaultPeer  = netip.MustParseAddr("169.254.213.2")
)

// Link is the host side's configuration of the tun device.
type Link struct {
	// Local and Peer are the point-to-point pair; the host's own packets into the tunnel
	// leave from Local. Default 169.254.213.1 and 169.254.213.2.
	Local, Peer netip.Addr
	// MTU of the device. Default DefaultMTU.
	MTU int
	// Routes are the ranges the host sends into the tunnel, and nothing else.
	Routes []netip.Prefix
}

// Config says how to open a tunnel.
type Config struct {
	Link
	// SSHAddr is the host's address as Satellite dials it; a route containing it is refused.
	SSHAddr netip.Addr
	// FirstUnit is the lowest tun unit tried. Default 213 (tun213).
	FirstUnit uint32
}

// Tunnel is an open, configured tunnel: the device and the host's routes into it.
type Tunnel struct {
	*Device
	// Name is the host's interface name, tun<unit>.
	Name string

	host Commander
	link Link
	once sync.Once
	err  error
}

func (c *Config) defaults() {
	if !c.Local.IsValid() {
		c.Local = DefaultLocal
	}
	if !c.Peer.IsValid() {
		c.Peer = DefaultPeer
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.FirstUnit == 0 {
		c.FirstUnit = 213
	}
}

// CheckRanges refuses (ErrOverlap) a range that would take the host's own traffic into the
// tunnel: one that overlaps a network the host is on, or holds the address its SSH client
// comes from or any of own (the host's SSH address, the tunnel's pair).
func CheckRanges(ctx context.Context, h Commander, ranges []netip.Prefix, own ...netip.Addr) error {
	nets, err := hostNets(ctx, h)
	if err != nil {
		return err
	}
	for _, a := range own {
		if a.IsValid() {
			nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	if err := checkRoutes(ranges, nets); err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	return nil
}

// Open checks the routes against the host's addresses, opens the channel on a free tun
// unit and configures the device and routes.
func Open(ctx context.Context, h Host, cfg Config) (*Tunnel, error) {
	cfg.defaults()
	if len(cfg.Routes) == 0 {
		return nil, errors.New("tunnel: no routes")
	}
	if err := CheckRanges(ctx, h, cfg.Routes, cfg.SSHAddr, cfg.Local, cfg.Peer); err != nil {
		return nil, err
	}
	unit, dev, err := openFree(ctx, h, cfg.FirstUnit)
	if err != nil {
		return nil, err
	}
	t := &Tunnel{Device: dev, Name: DeviceName(unit), host: h, link: cfg.Link}
	if _, err := h.Output(ctx, configureCmd(t.Name, cfg.Link)); err != nil {
		_ = t.Close(ctx)
		return nil, fmt.Errorf("configure %s: %w", t.Name, err)
	}
	return t, nil
}

// openFree opens the channel on the first free unit, trying the next ones when another
// opener took it in between.
func openFree(ctx context.Context, h Host, first uint32) (uint32, *Device, error) {
	var lastErr error
	for range 3 {
		unit, err := freeUnit(ctx, h, first)
		if err != nil {
			return 0, nil, err
		}
		dev, err := OpenDevice(ctx, h, unit)
		if err == nil {
			return unit, dev, nil
		}
		lastErr = err
		first = unit + 1
	}
	return 0, nil, lastErr
}

// Repair puts back what is missing on the host of the device's address, its up state and
// its routes (someone's `ip route flush`, a network manager, another tunnel that took a
// route and went), and says what it put back; nothing when all was there.
func (t *Tunnel) Repair(ctx context.Context) ([]string, error) {
	out, err := t.host.Output(ctx, repairCmd(t.Name, t.link))
	if err != nil {
		return nil, fmt.Errorf("check %s on the host: %w", t.Name, err)
	}
	return parseRepaired(string(out)), nil
}

// Close closes the channel, then removes the routes and the device from the host. It is
// idempotent; the first call's result is returned again.
func (t *Tunnel) Close(ctx context.Context) error {
	t.once.Do(func() {
		err := t.Device.Close()
		if _, terr := t.host.Output(ctx, teardownCmd(t.Name, t.link.Routes)); terr != nil {
			err = errors.Join(err, fmt.Errorf("tear down %s: %w", t.Name, terr))
		}
		t.err = err
	})
	return t.err
}
