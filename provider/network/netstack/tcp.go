package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// handleTCP answers each SYN the forwarder passes on (in a goroutine of gVisor's, counted in
// flows): it dials the destination first, so a refused or unreachable one is reset at
// once, then completes the handshake and splices the two connections.
func (s *Stack) handleTCP(ctx context.Context) func(*tcp.ForwarderRequest) {
	return func(r *tcp.ForwarderRequest) {
		if !s.flows.acquire() {
			r.Complete(true)
			return
		}
		defer s.flows.release()
		id := r.ID()
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		out, err := s.cfg.Dial(dctx, "tcp", hostPort(id.LocalAddress, id.LocalPort))
		cancel()
		if err != nil {
			r.Complete(true)
			return
		}
		var wq waiter.Queue
		ep, terr := r.CreateEndpoint(&wq)
		if terr != nil {
			r.Complete(true)
			_ = out.Close()
			return
		}
		r.Complete(false)
		splice(ctx, gonet.NewTCPConn(&wq, ep), out)
	}
}

func hostPort(a tcpip.Address, port uint16) string {
	addr, _ := netip.AddrFromSlice(a.AsSlice())
	return net.JoinHostPort(addr.String(), strconv.Itoa(int(port)))
}

// splice copies both ways until both directions have ended, passing a half-close on as a
// half-close; an error either way (a reset) closes both connections, as does ctx ending.
func splice(ctx context.Context, a, b net.Conn) {
	stop := context.AfterFunc(ctx, func() {
		_ = a.Close()
		_ = b.Close()
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { pipe(a, b) })
	pipe(b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
}

type closeWriter interface{ CloseWrite() error }

// pipe copies src to dst; at src's end it half-closes dst, on an error it closes both.
func pipe(dst, src net.Conn) {
	_, err := io.CopyBuffer(dst, src, make([]byte, 64<<10))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		_ = src.Close()
		_ = dst.Close()
		return
	}
	if cw, ok := dst.(closeWriter); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = dst.Close()
}
