package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
)

// Dialer opens a TCP connection from the host (remote.Host.DialTCP).
type Dialer interface {
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
}

// Config configures the relays.
type Config struct {
	// ListenIP is the node's address, Satellite's own pod IP: the relays listen there.
	ListenIP string
	// HostIP is the address on the host that relayed connections are made to, the pods'
	// address there (the prober's too).
	HostIP string
	// DialTimeout bounds the connection to the host of each relayed connection. Default 10 s.
	DialTimeout time.Duration
	// MaxConns bounds the connections relayed at once; those beyond are reset. Default 4096.
	MaxConns int
	// Listen opens a listener; default net.ListenConfig's.
	Listen func(ctx context.Context, network, addr string) (net.Listener, error)
	// UDP reaches the host's pods' UDP ports (Link.DialUDP); nil: UDP ports are not relayed.
	UDP UDPDialer
}

// Relays listen on the node's address on the ports of the pods on the host and relay each
// connection to the same port on the host (TCP, over an SSH channel), and each UDP
// association through the tunnel (with Config.UDP). An SCTP port is recorded (it still
// conflicts) but not listened on.
type Relays struct {
	cfg    Config
	dialer Dialer
	base   context.Context // cancelled when Run ends: dials in flight stop
	cancel context.CancelFunc

	mu        sync.Mutex
	owners    map[string][]Port
	listeners map[Port]io.Closer
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// New makes the relays; Run closes them.
func New(cfg Config, dialer Dialer) *Relays {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 4096
	}
	if cfg.Listen == nil {
		var lc net.ListenConfig
		cfg.Listen = lc.Listen
	}
	base, cancel := context.WithCancel(context.Background())
	return &Relays{cfg: cfg, dialer: dialer, base: base, cancel: cancel, owners: map[string][]Port{},
		listeners: map[Port]io.Closer{}, conns: map[net.Conn]struct{}{}}
}

// Run waits until ctx ends, then closes every listener and relayed connection and returns
// once their goroutines have stopped.
func (r *Relays) Run(ctx context.Context) {
	<-ctx.Done()
	r.mu.Lock()
	r.closed = true
	for p, l := range r.listeners {
		_ = l.Close()
		delete(r.listeners, p)
	}
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// Set makes owner's ports exactly ports, opening and closing listeners as the union of every
// owner's ports needs. A port that cannot be listened on is named in the error; it is tried
// again at the next Set.
func (r *Relays) Set(ctx context.Context, owner string, ports []Port) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(ports) == 0 {
		delete(r.owners, owner)
	} else {
		r.owners[owner] = append([]Port(nil), ports...)
	}
	return r.reconcile(ctx)
}

// Remove drops owner's ports (Set with none).
func (r *Relays) Remove(ctx context.Context, owner string) {
	_ = r.Set(ctx, owner, nil)
}

// Listening lists the ports listened on, sorted.
func (r *Relays) Listening() []Port {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := map[Port]bool{}
	for p := range r.listeners {
		set[p] = true
	}
	return sorted(set)
}

// reconcile opens the listeners the owners need and closes the others; r.mu is held.
func (r *Relays) reconcile(ctx context.Context) error {
	if r.closed {
		return nil
	}
	want := map[Port]bool{}
	for _, ports := range r.owners {
		for _, p := range ports {
			want[p] = p.Protocol == corev1.ProtocolTCP || (p.Protocol == corev1.ProtocolUDP && r.cfg.UDP != nil)
		}
	}
	for p, l := range r.listeners {
		if !want[p] {
			_ = l.Close()
			delete(r.listeners, p)
		}
	}
	var errs []error
	for p, relayed := range want {
		if _, ok := r.listeners[p]; ok || !relayed {
			continue
		}
		if err := r.listen(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("relay port %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// listen opens the listener of one port and starts serving it; r.mu is held.
func (r *Relays) listen(ctx context.Context, p Port) error {
	if p.Protocol == corev1.ProtocolUDP {
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, "udp", udpAddr(r.cfg.ListenIP, p.Port))
		if err != nil {
			return err
		}
		u := &udpRelay{pc: pc, dial: r.cfg.UDP, port: uint16(p.Port), assocs: map[string]net.Conn{}}
		r.listeners[p] = u
		r.wg.Add(1)
		go r.serveUDP(log.G(ctx), u)
		return nil
	}
	l, err := r.cfg.Listen(ctx, "tcp", net.JoinHostPort(r.cfg.ListenIP, strconv.Itoa(int(p.Port))))
	if err != nil {
		return err
	}
	r.listeners[p] = l
	r.wg.Add(1)
	go r.serve(log.G(ctx), l, p)
	return nil
}
