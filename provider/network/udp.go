package network

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
)

// UDPDialer opens a UDP association to a port of the host's pods (Link.DialUDP, through the
// tunnel: SSH has no datagram forwarding of its own).
type UDPDialer func(port uint16) (net.Conn, error)

// udpIdle ends a relayed UDP association after this long without a datagram either way.
const udpIdle = time.Minute

// udpRelay serves one UDP port on the node's address: each client (address and port) gets an
// association to the host, which carries its datagrams there and the answers back.
type udpRelay struct {
	pc   net.PacketConn
	dial UDPDialer
	port uint16

	mu     sync.Mutex
	assocs map[string]net.Conn
	closed bool
}

// serveUDP relays the datagrams of one port until its listener is closed; then it ends every
// association and returns once their goroutines have.
func (r *Relays) serveUDP(logger log.Logger, u *udpRelay) {
	defer r.wg.Done()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer u.closeAll()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := u.pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logger.WithError(err).Warnf("UDP relay of port %d stopped", u.port)
			}
			return
		}
		c, fresh := u.assoc(from)
		if c == nil {
			continue // the tunnel is down: dropped, as a datagram is
		}
		if fresh {
			wg.Go(func() { u.answers(c, from) })
		}
		_, _ = c.Write(buf[:n])
	}
}

// assoc is the association of a client, made on its first datagram (fresh).
func (u *udpRelay) assoc(from net.Addr) (net.Conn, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c, ok := u.assocs[from.String()]; ok || u.closed {
		return c, false
	}
	c, err := u.dial(u.port)
	if err != nil {
		return nil, false
	}
	u.assocs[from.String()] = c
	return c, true
}

// answers sends the host's datagrams of one association back to its client until it has been
// idle for udpIdle or is closed.
func (u *udpRelay) answers(c net.Conn, to net.Addr) {
	defer u.drop(to, c)
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := u.pc.WriteTo(buf[:n], to); err != nil {
			return
		}
	}
}

func (u *udpRelay) drop(to net.Addr, c net.Conn) {
	u.mu.Lock()
	if u.assocs[to.String()] == c {
		delete(u.assocs, to.String())
	}
	u.mu.Unlock()
	_ = c.Close()
}

func (u *udpRelay) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for _, c := range u.assocs {
		_ = c.Close()
	}
}

// Close ends the listener; serveUDP then ends the associations.
func (u *udpRelay) Close() error { return u.pc.Close() }

func udpAddr(ip string, port int32) string { return net.JoinHostPort(ip, strconv.Itoa(int(port))) }
