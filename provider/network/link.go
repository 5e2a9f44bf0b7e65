package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/satellite-vk/satellite/provider/network/netstack"
	"github.com/satellite-vk/satellite/remote/tunnel"
)

// ConditionClusterNetwork is the node condition that says whether the pods on the host reach
// the cluster's network (True) or not, and why.
const ConditionClusterNetwork corev1.NodeConditionType = "ClusterNetwork"

// Reasons of the ClusterNetwork condition.
const (
	ReasonTunnelUp      = "TunnelUp"
	ReasonTunnelRefused = "TunnelRefused" // sshd does not permit the tunnel
	ReasonRangeOverlap  = "RangeOverlap"  // a cluster range holds one of the host's own addresses
	ReasonTunnelDown    = "TunnelDown"
)

// LinkConfig configures the cluster link.
type LinkConfig struct {
	// Ranges are the cluster's ranges the host routes into the tunnel: its Service ranges,
	// its pod ranges; nothing else.
	Ranges []netip.Prefix
	// SSHAddr is the host's address as Satellite reaches it (a range holding it is refused);
	// the zero Addr when Satellite dials a name.
	SSHAddr netip.Addr
	// Dial opens each flow's connection from Satellite's pod; default net.Dialer.
	Dial netstack.DialFunc
	// MaxRetry bounds the wait between two attempts to open the tunnel. Default 4 s: an attempt
	// costs one SSH dial at most, and the remote.Host paces its dials itself.
	MaxRetry time.Duration
	// Changed is called when the link goes up or down; nil: not called.
	Changed func(up bool, reason, message string)
	// Repaired is called when the host had lost some of the tunnel's address or routes and
	// they were put back; nil: not called.
	Repaired func(message string)
	// RouteCheck is how often the host's side of the tunnel is checked and repaired.
	// Default 30 s: one command on the host.
	RouteCheck time.Duration
	// HostEnd and SatelliteEnd are the tunnel's point-to-point pair: the host's address on
	// its tun device, and Satellite's (from which datagrams of the cluster reach the host's
	// pods). Defaults 169.254.213.1 and 169.254.213.2.
	HostEnd, SatelliteEnd netip.Addr
}

// Link keeps the host's pods on the cluster's network, the way back from the relays: a
// layer-3 tunnel on the SSH connection (remote/tunnel) into which the host routes the
// cluster's ranges, and a userspace TCP/IP stack (netstack) in Satellite's process that
// terminates each flow and dials its destination from Satellite's own pod. When the
// connection drops, the tunnel goes with it, and Link opens a new one.
type Link struct {
	cfg  LinkConfig
	host tunnel.Host

	mu      sync.Mutex
	up      bool
	reason  string
	message string
	stack   *netstack.Stack // while the tunnel is up
}

// ErrTunnelDown is DialUDP's error while there is no tunnel.
var ErrTunnelDown = errors.New("the tunnel to the host is down")

// NewLink makes the link; Run opens it and keeps it open.
func NewLink(cfg LinkConfig, host tunnel.Host) *Link {
	if !cfg.HostEnd.IsValid() {
		cfg.HostEnd = netip.MustParseAddr("169.254.213.1")
	}
	if !cfg.SatelliteEnd.IsValid() {
		cfg.SatelliteEnd = netip.MustParseAddr("169.254.213.2")
	}
	if cfg.MaxRetry == 0 {
		cfg.MaxRetry = 4 * time.Second
	}
	if cfg.RouteCheck == 0 {
		cfg.RouteCheck = 30 * time.Second
	}
	return &Link{cfg: cfg, host: host, reason: ReasonTunnelDown, message: "the tunnel to the host is not open yet"}
}

// Run opens the tunnel and serves it until ctx ends, opening it again whenever it fails. It
// returns after the tunnel is closed and its routes are removed from the host.
func (l *Link) Run(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		opened := time.Now()
		err := l.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		l.set(false, reasonOf(err), err.Error())
		log.G(ctx).WithError(err).Warn("the host's pods have no cluster network; trying again")
		if time.Since(opened) > time.Minute {
			wait = time.Second // it was up for a while: a new failure, not the same one
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, l.cfg.MaxRetry)
	}
}

// serve opens one tunnel and runs the stack on it until either fails or ctx ends.
func (l *Link) serve(ctx context.Context) error {
	t, err := tunnel.Open(ctx, l.host, tunnel.Config{SSHAddr: l.cfg.SSHAddr,
		Link: tunnel.Link{Routes: l.cfg.Ranges, Local: l.cfg.HostEnd, Peer: l.cfg.SatelliteEnd, MTU: tunnel.DefaultMTU}})
	if err != nil {
		return err
	}
	defer func() {
		// The routes are removed even when ctx has ended (Satellite stopping).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := t.Close(cctx); err != nil {
			log.G(ctx).WithError(err).Debug("closing the tunnel")
		}
	}()
	st, err := netstack.New(t.Device, netstack.Config{Ranges: l.cfg.Ranges, Dial: l.cfg.Dial, Self: l.cfg.SatelliteEnd, MTU: tunnel.DefaultMTU})
	if err != nil {
		return err
	}
	l.setStack(st)
	defer l.setStack(nil)
	stopRepair := l.keepRepaired(ctx, t)
	defer stopRepair()
	l.set(true, ReasonTunnelUp, fmt.Sprintf("pods on the host reach %s through %s on the host", prefixes(l.cfg.Ranges), t.Name))
	log.G(ctx).WithField("device", t.Name).WithField("ranges", prefixes(l.cfg.Ranges)).Info("the host's pods are on the cluster network")
	if err := st.Run(ctx); err != nil {
		return fmt.Errorf("the tunnel to the host ended: %w", err)
	}
	return nil
}

// keepRepaired checks the host's side of t every RouteCheck and puts back what is missing,
// until the returned stop is called; stop returns once the check has ended.
func (l *Link) keepRepaired(ctx context.Context, t *tunnel.Tunnel) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(l.cfg.RouteCheck)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.repair(ctx, t)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func (l *Link) repair(ctx context.Context, t *tunnel.Tunnel) {
	put, err := t.Repair(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		log.G(ctx).WithError(err).Warn("could not check the tunnel on the host")
	case len(put) > 0:
		msg := fmt.Sprintf("the host had lost the %s of %s; Satellite put them back", strings.Join(put, ", "), t.Name)
		log.G(ctx).WithField("device", t.Name).Warn(msg)
		if l.cfg.Repaired != nil {
			l.cfg.Repaired(msg)
		}
	}
}

// reasonOf classifies why the tunnel could not be opened or ended.
func reasonOf(err error) string {
	var oce *ssh.OpenChannelError
	switch {
	case errors.As(err, &oce) && oce.Reason == ssh.Prohibited:
		return ReasonTunnelRefused
	case errors.Is(err, tunnel.ErrOverlap):
		return ReasonRangeOverlap
	}
	return ReasonTunnelDown
}

func (l *Link) set(up bool, reason, message string) {
	if reason == ReasonTunnelRefused {
		message += "; the host's sshd must permit Satellite's user a tunnel: `PermitTunnel point-to-point` in a `Match User` block: satellite host prepare --reload-sshd writes it, then restart Satellite's pod"
	}
	l.mu.Lock()
	changed := l.up != up || l.reason != reason || l.message != message
	l.up, l.reason, l.message = up, reason, message
	l.mu.Unlock()
	if changed && l.cfg.Changed != nil {
		l.cfg.Changed(up, reason, message)
	}
}

// Up tells whether the host's pods reach the cluster now.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// Condition is the node's ClusterNetwork condition as it stands.
func (l *Link) Condition() corev1.NodeCondition {
	l.mu.Lock()
	defer l.mu.Unlock()
	status := corev1.ConditionFalse
	if l.up {
		status = corev1.ConditionTrue
	}
	now := metav1.Now()
	return corev1.NodeCondition{Type: ConditionClusterNetwork, Status: status, Reason: l.reason, Message: l.message,
		LastHeartbeatTime: now, LastTransitionTime: now}
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func (l *Link) setStack(st *netstack.Stack) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stack = st
}

// DialUDP opens a UDP association to port at the host's end of the tunnel, where a pod on the
// host that listens on all addresses receives it: the relays' way to the pods' UDP ports.
func (l *Link) DialUDP(port uint16) (net.Conn, error) {
	l.mu.Lock()
	st := l.stack
	l.mu.Unlock()
	if st == nil {
		return nil, ErrTunnelDown
	}
	return st.DialUDP(netip.AddrPortFrom(l.cfg.HostEnd, port))
}
