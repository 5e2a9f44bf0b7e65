package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Output runs cmd on the host through the login shell and returns its standard output. A
// non-zero exit is an *ExitError carrying the exit status and standard error. Cancelling ctx
// signals the command and closes the session.
func (h *Host) Output(ctx context.Context, cmd string) ([]byte, error) {
	return h.Input(ctx, cmd, nil)
}

// Input runs cmd on the host like Output, with stdin (nil: none) as its standard input. Data that must
// not appear in a command line or a log (secret volumes) reaches the host this way.
func (h *Host) Input(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	s, release, err := h.session(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &stdout, &stderr, stdin
	stop := context.AfterFunc(ctx, func() { endSession(s) })
	defer stop()
	err = s.Run(cmd)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("ssh %s: %q: %w", h.cfg.Addr, firstWord(cmd), ctx.Err())
	}
	return stdout.Bytes(), commandError(h.cfg.Addr, cmd, err, stderr.String())
}

// session opens an SSH session on the live connection, waiting while maxSessions are open.
// The returned release must be called once the session is closed.
func (h *Host) session(ctx context.Context) (*ssh.Session, func(), error) {
	select {
	case h.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("ssh %s: waiting for a session: %w", h.cfg.Addr, ctx.Err())
	}
	release := func() {
		h.channels.Add(-1)
		<-h.sessions
	}
	c, err := h.client(ctx)
	if err != nil {
		<-h.sessions
		return nil, nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		<-h.sessions
		return nil, nil, fmt.Errorf("ssh %s: open session: %w: %w", h.cfg.Addr, ErrUnavailable, err)
	}
	h.channels.Add(1)
	return s, release, nil
}

// endSession asks sshd to terminate the command (the "signal" channel request, RFC 4254
// 6.9) and closes the channel, which also ends commands that ignore the signal at their next
// write.
func endSession(s *ssh.Session) {
	_ = s.Signal(ssh.SIGTERM)
	_ = s.Close()
}

func commandError(addr, cmd string, err error, stderr string) error {
	if err == nil {
		return nil
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("%q on %s: %w", firstWord(cmd), addr, &ExitError{Code: exit.ExitStatus(), Stderr: stderr})
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%q on %s: connection lost: %w", firstWord(cmd), addr, ErrUnavailable)
	}
	return fmt.Errorf("%q on %s: %w", firstWord(cmd), addr, err)
}

func firstWord(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	if i := strings.IndexAny(cmd, " \t\n"); i > 0 {
		return cmd[:i]
	}
	return cmd
}

// Quote makes s a single word for a POSIX shell.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
