package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
}

// Stream connects to a CRI streaming URL (as returned by Exec or Attach) through the host's
// SSH connection and copies the session's streams until it ends. The URL names an address
// on the host's loopback: the host opens no port to anyone. A command that exits non-zero
// yields an *ExitError.
func (h *Host) Stream(ctx context.Context, rawURL string, opts StreamOptions) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("streaming url: %w", err)
	}
	// The SPDY round tripper dials through UpgradeTransport's DialContext when it has one.
	dial := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return h.DialTCP(ctx, addr) }}
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
