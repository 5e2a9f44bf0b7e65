package netstack

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// handleUDP is called by the stack for a datagram of no association yet: it creates the
// association's endpoint (later datagrams of the same source and destination go to it) and
// relays it in a goroutine counted in flows. Past MaxFlows the datagram is dropped.
func (s *Stack) handleUDP(ctx context.Context) func(*udp.ForwarderRequest) bool {
	return func(r *udp.ForwarderRequest) bool {
		if !s.flows.acquire() {
			return true
		}
		id := r.ID()
		var wq waiter.Queue
		ep, terr := r.CreateEndpoint(&wq)
		if terr != nil {
			s.flows.release()
			return true
		}
		in := gonet.NewUDPConn(&wq, ep)
		go func() {
			defer s.flows.release()
			s.relayUDP(ctx, in, hostPort(id.LocalAddress, id.LocalPort))
		}()
		return true
	}
}

// relayUDP relays datagrams both ways between the association and a socket dialed to dst
// until neither way has carried one for UDPIdle, or ctx ends.
func (s *Stack) relayUDP(ctx context.Context, in net.Conn, dst string) {
	defer in.Close()
	out, err := s.cfg.Dial(ctx, "udp", dst)
	if err != nil {
		return
	}
	defer out.Close()
	stop := context.AfterFunc(ctx, func() {
		_ = in.Close()
		_ = out.Close()
	})
	defer stop()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Go(func() {
		s.copyDatagrams(out, in, &last)
		_ = out.Close() // ends the other way's Read
	})
	s.copyDatagrams(in, out, &last)
	_ = in.Close()
	wg.Wait()
}

// copyDatagrams copies datagrams from src to dst until src fails or the association has
// been idle (no datagram either way, as last records) for UDPIdle.
func (s *Stack) copyDatagrams(dst, src net.Conn, last *atomic.Int64) {
	buf := make([]byte, 65535)
	for {
		idleEnd := time.Unix(0, last.Load()).Add(s.cfg.UDPIdle)
		if !time.Now().Before(idleEnd) {
			return
		}
		_ = src.SetReadDeadline(idleEnd)
		n, err := src.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue // the other way may have moved last on
		}
		if err != nil {
			return
		}
		last.Store(time.Now().UnixNano())
		if _, err := dst.Write(buf[:n]); err != nil && !isTransient(err) {
			return
		}
	}
}

// isTransient is a write error that ends no association: a destination's ICMP port
// unreachable answer surfaces as ECONNREFUSED on a later write of a connected socket.
func isTransient(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !errors.Is(err, net.ErrClosed)
}
