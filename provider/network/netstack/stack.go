package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Link carries IP packets to and from the remote host; *tunnel.Device is one. ReadPacket
// is called from one goroutine, WritePacket from another; Close makes ReadPacket return.
type Link interface {
	ReadPacket(buf []byte) (int, error)
	WritePacket(pkt []byte) error
	Close() error
}

// DialFunc opens a connection from Satellite's process, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config says which destinations the stack serves and how it reaches them.
type Config struct {
	// Ranges are the destinations accepted (the host's routes into the tunnel); a packet to
	// anything else is dropped.
	Ranges []netip.Prefix
	// Dial opens each flow's connection to its destination. Default: net.Dialer.
	Dial DialFunc
	// MTU of the link; it must match the host's device. Default 16000, tunnel.DefaultMTU.
	MTU uint32
	// MaxFlows bounds the TCP connections and UDP associations open at once; a TCP flow
	// past it is reset, a UDP one dropped. Default 4096.
	MaxFlows int
	// DialTimeout bounds each TCP dial; a flow whose dial fails or times out is reset.
	// Default 10 s.
	DialTimeout time.Duration
	// UDPIdle ends a UDP association after this long without a datagram either way.
	// Default 60 s.
	UDPIdle time.Duration
	// Self is Satellite's own address on the link (the host's peer): packets to it are
	// accepted, and DialUDP sends from it. Zero: none, and DialUDP fails.
	Self netip.Addr
}

// Stack terminates the host's flows in a userspace TCP/IP stack and relays each one to the
// same destination dialed from Satellite's process.
type Stack struct {
	cfg   Config
	link  Link
	flows flows

	// accept are the destinations taken from the link: the ranges, and Self.
	accept []netip.Prefix

	mu sync.Mutex
	ns *stack.Stack // while Run runs
}

const nicID = 1

// New checks cfg; the stack starts in Run.
func New(link Link, cfg Config) (*Stack, error) {
	if len(cfg.Ranges) == 0 {
		return nil, errors.New("netstack: no ranges")
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.MTU == 0 {
		cfg.MTU = 16000
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = 4096
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.UDPIdle == 0 {
		cfg.UDPIdle = time.Minute
	}
	s := &Stack{cfg: cfg, link: link, flows: flows{max: cfg.MaxFlows}, accept: cfg.Ranges}
	if cfg.Self.IsValid() {
		s.accept = append(append([]netip.Prefix(nil), cfg.Ranges...), netip.PrefixFrom(cfg.Self, cfg.Self.BitLen()))
	}
	return s, nil
}

// Flows is the number of flows open now.
func (s *Stack) Flows() int { return s.flows.open() }

// Run serves the link until ctx ends or the link fails, then closes the link and every
// flow and returns after all of its goroutines have stopped. It returns nil when ctx ended,
// the link's error otherwise. Run is called once.
func (s *Stack) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ns, ep, err := s.newStack(ctx)
	if err != nil {
		return err
	}
	s.setRunning(ns)
	defer s.setRunning(nil)
	var wg sync.WaitGroup
	wg.Go(func() { cancel(s.inbound(ep)) })
	wg.Go(func() { cancel(s.outbound(ctx, ep)) })
	<-ctx.Done()
	s.flows.close()
	_ = s.link.Close()
	ep.Close()
	wg.Wait()
	s.flows.wait() // each flow's connections are closed by ctx
	ns.Close()
	ns.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func (s *Stack) newStack(ctx context.Context) (*stack.Stack, *channel.Endpoint, error) {
	ns := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	if err := tuneTCP(ns); err != nil {
		return nil, nil, err
	}
	ep := channel.New(1024, s.cfg.MTU, "")
	if err := ns.CreateNIC(nicID, ep); err != nil {
		return nil, nil, fmt.Errorf("netstack: create NIC: %s", err)
	}
	// Promiscuous: accept packets to any address (the filter in inbound narrows that to the
	// ranges); spoofing: answer from those addresses.
	if err := ns.SetPromiscuousMode(nicID, true); err != nil {
		return nil, nil, fmt.Errorf("netstack: promiscuous mode: %s", err)
	}
	if err := ns.SetSpoofing(nicID, true); err != nil {
		return nil, nil, fmt.Errorf("netstack: spoofing: %s", err)
	}
	ns.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	if s.cfg.Self.IsValid() {
		addr := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFromSlice(s.cfg.Self.AsSlice()).WithPrefix()}
		if s.cfg.Self.Is6() {
			addr.Protocol = ipv6.ProtocolNumber
		}
		if err := ns.AddProtocolAddress(nicID, addr, stack.AddressProperties{}); err != nil {
			return nil, nil, fmt.Errorf("netstack: address %s: %s", s.cfg.Self, err)
		}
	}
	tcpFwd := tcp.NewForwarder(ns, 0, 512, s.handleTCP(ctx))
	ns.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(ns, s.handleUDP(ctx))
	ns.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)
	return ns, ep, nil
}

// tuneTCP sets what bulk transfers over a high-latency link need: SACK, CUBIC, and
// buffers that start at 1 MiB and grow with receive-buffer moderation up to 4 MiB.
func tuneTCP(ns *stack.Stack) error {
	opts := []tcpip.SettableTransportProtocolOption{
		new(tcpip.TCPSACKEnabled(true)),
		new(tcpip.CongestionControlOption("cubic")),
		new(tcpip.TCPModerateReceiveBufferOption(true)),
		&tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 4 << 20},
		&tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 4 << 20},
	}
	for _, o := range opts {
		if err := ns.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("netstack: TCP option %T: %s", o, err)
		}
	}
	return nil
}

// inbound feeds the link's packets to the stack, dropping those to other destinations.
func (s *Stack) inbound(ep *channel.Endpoint) error {
	buf := make([]byte, 65535)
	for {
		n, err := s.link.ReadPacket(buf)
		if err != nil {
			return fmt.Errorf("netstack: read link: %w", err)
		}
		proto, ok := accepted(buf[:n], s.accept)
		if !ok {
			continue
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[:n])})
		ep.InjectInbound(proto, pkt)
		pkt.DecRef()
	}
}

// outbound sends the stack's packets into the link.
func (s *Stack) outbound(ctx context.Context, ep *channel.Endpoint) error {
	for {
		pkt := ep.ReadContext(ctx)
		if pkt == nil {
			return ctx.Err()
		}
		v := pkt.ToView()
		err := s.link.WritePacket(v.AsSlice())
		v.Release()
		pkt.DecRef()
		if err != nil {
			return fmt.Errorf("netstack: write link: %w", err)
		}
	}
}

// accepted says whether pkt is an IP packet to one of ranges, and its protocol.
func accepted(pkt []byte, ranges []netip.Prefix) (tcpip.NetworkProtocolNumber, bool) {
	var dst netip.Addr
	var proto tcpip.NetworkProtocolNumber
	switch {
	case len(pkt) >= header.IPv4MinimumSize && pkt[0]>>4 == 4:
		dst, proto = netip.AddrFrom4([4]byte(pkt[16:20])), ipv4.ProtocolNumber
	case len(pkt) >= header.IPv6MinimumSize && pkt[0]>>4 == 6:
		dst, proto = netip.AddrFrom16([16]byte(pkt[24:40])), ipv6.ProtocolNumber
	default:
		return 0, false
	}
	for _, r := range ranges {
		if r.Contains(dst) {
			return proto, true
		}
	}
	return 0, false
}

func (s *Stack) setRunning(ns *stack.Stack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ns = ns
}

// ErrNotRunning is DialUDP's error when the stack is not running.
var ErrNotRunning = errors.New("netstack: not running")

// DialUDP opens a UDP association from Self to dst on the host's side of the link: the way
// datagrams from the cluster reach a pod's UDP port on the host. It fails once Run has ended.
func (s *Stack) DialUDP(dst netip.AddrPort) (net.Conn, error) {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns == nil || !s.cfg.Self.IsValid() {
		return nil, ErrNotRunning
	}
	proto := tcpip.NetworkProtocolNumber(ipv4.ProtocolNumber)
	if dst.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	laddr := &tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(s.cfg.Self.AsSlice())}
	raddr := &tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(dst.Addr().AsSlice()), Port: dst.Port()}
	c, err := gonet.DialUDP(ns, laddr, raddr, proto)
	if err != nil {
		return nil, fmt.Errorf("netstack: udp to %s: %w", dst, err)
	}
	return c, nil
}
