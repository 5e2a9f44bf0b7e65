package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// TermSize is a terminal size in characters.
type TermSize struct {
	Width, Height uint16
}

// StreamOptions are the standard streams of an exec or attach session.
type StreamOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Resize         <-chan TermSize
	// Predialed, when set, is a connection PredialStream started; Stream uses it if it goes
	// to the URL's address, and closes it otherwise.
	Predialed *Predialed
}

// Predialed is a connection to the host's streaming server, opened while the CRI call that
// returns a session's URL is in flight, so that the session pays one round trip to the host
// less: containerd's streaming server keeps its address while it runs.
type Predialed struct {
	addr string
	done chan struct{}
	mu   sync.Mutex
	conn net.Conn // nil when the dial failed, and once taken or closed
}

// PredialStream starts connecting to the streaming server of the last session, if there was
// one (nil otherwise). The caller hands the result to Stream, or closes it.
func (h *Host) PredialStream(ctx context.Context) *Predialed {
	addr := h.streamAddr.Load()
	if addr == nil {
		return nil
	}
	p := &Predialed{addr: *addr, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		c, err := h.DialTCP(ctx, p.addr)
		if err != nil {
			return // Stream dials again: the server may have moved
		}
		p.mu.Lock()
		p.conn = c
		p.mu.Unlock()
	}()
	return p
}

// take waits for the dial and hands its connection over if it is to addr and was made.
func (p *Predialed) take(addr string) net.Conn {
	if p == nil || p.addr != addr {
		return nil
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.conn
	p.conn = nil
	return c
}

// Close waits for the dial and closes its connection unless Stream took it. A nil
// *Predialed is closed already.
func (p *Predialed) Close() {
	if p == nil {
		return
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
}

// Stream connects to a CRI streaming URL (as returned by Exec or Attach) through the host's
// SSH connection and copies the session's streams until it ends. The URL names an address
// on the host's loopback: the host opens no port to anyone. A command that exits non-zero
// yields an *ExitError.
func (h *Host) Stream(ctx context.Context, rawURL string, opts StreamOptions) error {
	defer opts.Predialed.Close()
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("streaming url: %w", err)
	}
	if u.Port() != "" {
		h.streamAddr.Store(&u.Host)
	}
	// The SPDY round tripper dials through UpgradeTransport's DialContext when it has one.
	dial := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		if c := opts.Predialed.take(addr); c != nil {
			return c, nil
		}
		return h.DialTCP(ctx, addr)
	}}
	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{UpgradeTransport: dial, PingPeriod: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("streaming client: %w", err)
	}
	exec, err := remotecommand.NewSPDYExecutorForTransports(rt, rt, "POST", u)
	if err != nil {
		return fmt.Errorf("streaming client: %w", err)
	}
	sopts := remotecommand.StreamOptions{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY}
	if opts.Resize != nil {
		sopts.TerminalSizeQueue = sizeQueue{ctx: ctx, c: opts.Resize}
	}
	err = exec.StreamWithContext(ctx, sopts)
	var exitErr utilexec.CodeExitError
	if errors.As(err, &exitErr) {
		return &ExitError{Code: exitErr.Code}
	}
	if err != nil {
		return fmt.Errorf("stream on %s: %w", h.cfg.Addr, err)
	}
	return nil
}

type sizeQueue struct {
	ctx context.Context
	c   <-chan TermSize
}

// Next blocks for the next size; nil ends the resize stream.
func (q sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s, ok := <-q.c:
		if !ok {
			return nil
		}
		return &remotecommand.TerminalSize{Width: s.Width, Height: s.Height}
	case <-q.ctx.Done():
		return nil
	}
}
