package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config says how to reach one host over SSH.
type Config struct {
	// Addr is host:port of the host's sshd.
	Addr string
	// User is the login user on the host.
	User string
	// Signer is the client's private key.
	Signer ssh.Signer
	// KnownHosts is the path of an OpenSSH known_hosts file holding the host's key (or a
	// @cert-authority line for it). There is no way to skip this check.
	KnownHosts string
	// DialTimeout bounds the TCP connect plus SSH handshake. Default 15 s.
	DialTimeout time.Duration
	// KeepaliveInterval is how often a keepalive@openssh.com request is sent; a connection
	// that misses one reply within the interval is closed (x/crypto/ssh has no keepalive of its
	// own). Default 10 s, so a dead link is noticed within 20 s.
	KeepaliveInterval time.Duration
}

// LoadSigner reads an OpenSSH or PEM private key file.
func LoadSigner(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ssh private key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("parse ssh private key %s: %w", path, err)
	}
	return signer, nil
}

// Host owns the SSH connection to one remote host. The connection is opened on first use and
// opened again on the next use after it drops; Close ends it for good. Host is safe for
// concurrent use.
type Host struct {
	cfg       Config
	clientCfg *ssh.ClientConfig

	mu     sync.Mutex
	conn   *conn
	closed bool
	wg     sync.WaitGroup // keepalive and wait goroutines of every conn

	// sessions bounds the SSH sessions open at once below OpenSSH's default MaxSessions (10
	// per connection); channels counts every open channel, for Stats.
	sessions chan struct{}
	channels atomic.Int64
	dials    atomic.Int64
}

// maxSessions is how many sessions Satellite opens at once on one connection: below
// OpenSSH's MaxSessions default of 10, leaving room for an operator's own.
const maxSessions = 8

// Stats is what a Host has open now, for leak checks and metrics.
type Stats struct {
	Connected bool  `json:"connected"`
	Dials     int64 `json:"dials"`    // SSH connections opened so far
	Channels  int64 `json:"channels"` // channels open now: CRI, SFTP, streams, commands
}

// Stats reports the connection's state.
func (h *Host) Stats() Stats {
	return Stats{Connected: h.Connected(), Dials: h.dials.Load(), Channels: h.channels.Load()}
}

type conn struct {
	*ssh.Client
	done chan struct{} // closed when the connection has ended

	sftpMu sync.Mutex
	sftp   *sftp.Client // one SFTP session serves every file access on this connection
}

// NewHost validates cfg and loads the known_hosts file. It does not connect.
func NewHost(cfg Config) (*Host, error) {
	if cfg.Signer == nil {
		return nil, errors.New("ssh: no private key")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	if cfg.KeepaliveInterval == 0 {
		cfg.KeepaliveInterval = 10 * time.Second
	}
	hostname, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh address %q: %w", cfg.Addr, err)
	}
	callback, err := knownhosts.New(cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("load known_hosts: %w", err)
	}
	return &Host{
		sessions: make(chan struct{}, maxSessions),
		cfg:      cfg,
		clientCfg: &ssh.ClientConfig{
			User:              cfg.User,
			Auth:              []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
			HostKeyCallback:   callback,
			HostKeyAlgorithms: hostKeyAlgorithms(callback, hostname, port),
			Timeout:           cfg.DialTimeout,
		},
	}, nil
}

// hostKeyAlgorithms asks the known_hosts callback which keys it holds for the host, so the
// handshake negotiates a host key type that can be verified (x/crypto/ssh otherwise picks its
// own preference and fails with a key mismatch when known_hosts holds another type). The
// probe key never matches, so the callback answers with a KeyError listing the known keys.
func hostKeyAlgorithms(callback ssh.HostKeyCallback, hostname, port string) []string {
	p, _ := strconv.Atoi(port)
	addr := &net.TCPAddr{IP: net.ParseIP(hostname), Port: p}
	err := callback(knownhosts.Normalize(net.JoinHostPort(hostname, port)), addr, probeKey{})
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	// No plain key for the host (unknown, or vouched for by a @cert-authority line): keep the
	// library's defaults and let the callback decide during the handshake.
	return algos
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	default:
		return []string{t}
	}
}

// probeKey is a public key of a type no known_hosts line can hold.
type probeKey struct{}

func (probeKey) Type() string                        { return "satellite-probe" }
func (probeKey) Marshal() []byte                     { return []byte("satellite-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// Addr is the host's SSH address.
func (h *Host) Addr() string { return h.cfg.Addr }

// client returns the live connection, dialing a new one when there is none.
func (h *Host) client(ctx context.Context) (*conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.conn != nil {
		select {
		case <-h.conn.done:
			h.conn = nil
		default:
			return h.conn, nil
		}
	}
	c, err := h.dial(ctx)
	if err != nil {
		return nil, err
	}
	h.conn = c
	return c, nil
}

func (h *Host) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", h.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w: %w", h.cfg.Addr, ErrUnavailable, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = tcp.SetDeadline(deadline)
	}
	sc, chans, reqs, err := ssh.NewClientConn(tcp, h.cfg.Addr, h.clientCfg)
	if err != nil {
		_ = tcp.Close()
		return nil, classifyHandshake(h.cfg.Addr, err)
	}
	_ = tcp.SetDeadline(time.Time{})
	c := &conn{Client: ssh.NewClient(sc, chans, reqs), done: make(chan struct{})}
	h.dials.Add(1)
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		_ = c.Wait()
		close(c.done)
		c.sftpMu.Lock()
		if c.sftp != nil {
			_ = c.sftp.Close()
			h.channels.Add(-1)
		}
		c.sftpMu.Unlock()
	}()
	go func() {
		defer h.wg.Done()
		h.keepalive(c)
	}()
	return c, nil
}

// keepalive closes c when the host stops answering keepalive requests.
func (h *Host) keepalive(c *conn) {
	t := time.NewTicker(h.cfg.KeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-reply:
			if err != nil {
				_ = c.Close()
			}
		case <-time.After(h.cfg.KeepaliveInterval):
			_ = c.Close()
			<-reply // SendRequest returns once the connection is closed
		}
	}
}

// HostKeyError says the host presented a key known_hosts does not vouch for.
type HostKeyError struct {
	Addr string
	Err  error
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("ssh %s: host key verification failed (refusing to connect): %v", e.Addr, e.Err)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

func classifyHandshake(addr string, err error) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	if errors.As(err, &keyErr) || errors.As(err, &revoked) {
		return &HostKeyError{Addr: addr, Err: err}
	}
	return fmt.Errorf("ssh %s: handshake: %w: %w", addr, ErrUnavailable, err)
}

// Connected reports whether an SSH connection is currently open.
func (h *Host) Connected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		return false
	}
	select {
	case <-h.conn.done:
		return false
	default:
		return true
	}
}

// Ping opens the connection if needed and checks the host answers.
func (h *Host) Ping(ctx context.Context) error {
	c, err := h.client(ctx)
	if err != nil {
		return err
	}
	reply := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		reply <- err
	}()
	select {
	case err := <-reply:
		if err != nil {
			return fmt.Errorf("ssh %s: %w: %w", h.cfg.Addr, ErrUnavailable, err)
		}
		return nil
	case <-ctx.Done():
		_ = c.Close()
		<-reply
		return fmt.Errorf("ssh %s: no answer: %w: %w", h.cfg.Addr, ErrUnavailable, ctx.Err())
	}
}

// DialUnix opens a stream to a unix socket on the host.
func (h *Host) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	return h.dialRemote(ctx, "unix", path)
}

// DialTCP opens a TCP connection from the host to addr (normally the host's loopback).
func (h *Host) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return h.dialRemote(ctx, "tcp", addr)
}

func (h *Host) dialRemote(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := h.client(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := c.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: dial %s %s on host: %w", h.cfg.Addr, network, addr, err)
	}
	h.channels.Add(1)
	return &countedConn{Conn: nc, h: h}, nil
}

// countedConn is a channel that leaves the count when it is closed.
type countedConn struct {
	net.Conn
	h    *Host
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.h.channels.Add(-1) })
	return c.Conn.Close()
}

// Close ends the connection and waits for its goroutines. It is idempotent.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	c := h.conn
	h.conn = nil
	h.mu.Unlock()
	var err error
	if c != nil {
		err = c.Close()
	}
	h.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
