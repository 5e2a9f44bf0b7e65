package network

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/virtual-kubelet/virtual-kubelet/log"
)

// serve accepts connections on one port until its listener is closed.
func (r *Relays) serve(logger log.Logger, l net.Listener, p Port) {
	defer r.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logger.WithError(err).Warnf("relay of port %s stopped accepting", p)
			}
			return
		}
		if !r.track(c) {
			reset(c)
			continue
		}
		r.wg.Add(1)
		go r.relay(logger, c, p)
	}
}

// track records a connection to relay; false when the relays are closed or full.
func (r *Relays) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.conns) >= r.cfg.MaxConns {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relays) untrack(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

// relay connects c to its port on the host and copies both ways until both ends are done. A
// connection the host refuses (nothing listens there, or the host is unreachable) is reset,
// as a kernel answers a connection to a closed port.
func (r *Relays) relay(logger log.Logger, c net.Conn, p Port) {
	defer r.wg.Done()
	defer r.untrack(c)
	ctx, cancel := context.WithTimeout(r.base, r.cfg.DialTimeout)
	up, err := r.dialer.DialTCP(ctx, net.JoinHostPort(r.cfg.HostIP, strconv.Itoa(int(p.Port))))
	cancel()
	if err != nil {
		logger.WithError(err).Debugf("relay of port %s: connection from %s reset", p, c.RemoteAddr())
		reset(c)
		return
	}
	splice(c, up)
}

// splice copies a to b and b to a. When one side ends its writes, the other's are ended
// (half-close); when a copy fails (a reset, the SSH connection lost), both are closed at once,
// so the other direction does not hang.
func splice(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(b, a)
	}()
	copyHalf(a, b)
	<-done
	_ = a.Close()
	_ = b.Close()
}

func copyHalf(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	_ = dst.Close()
}

// reset closes c with a TCP reset where it can.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
