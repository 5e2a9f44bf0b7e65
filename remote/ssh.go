package remote

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
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
	// KnownHosts are the paths of OpenSSH known_hosts files holding the host's key (or a
	// @cert-authority line for it; @revoked lines are honoured). They are read again at every
	// connection, so an updated file (a Secret's new content) takes effect at the next one.
	// There is no way to skip this check.
	KnownHosts string
	// ExtraKnownHosts is a further known_hosts file, such as the one holding a key pinned on
	// first use; it need not exist.
	ExtraKnownHosts string
	// TrustOnFirstUse, when set, is called when the host is in no known_hosts file at all (not
	// when its key differs from a known one): returning nil accepts the key for this
	// connection, and the function is expected to pin it (write it to ExtraKnownHosts).
	TrustOnFirstUse func(hostport string, key ssh.PublicKey) error
	// Resolve, when set, is called before every connection and returns the host:port to dial,
	// such as an EC2 instance's current address, which changes when the instance is stopped
	// and started. Addr then only names the host: its key is looked up in known_hosts (and a
	// host certificate's principal checked) under Addr, as OpenSSH's HostKeyAlias does, and
	// messages name it. An error is reported as ErrUnavailable.
	Resolve func(ctx context.Context) (string, error)
	// DialTimeout bounds the address lookup, TCP connect and SSH handshake. Default 15 s.
	DialTimeout time.Duration
	// KeepaliveInterval is how often a keepalive@openssh.com request is sent; a connection
	// that misses one reply within the interval is closed (x/crypto/ssh has no keepalive of its
	// own). Default 10 s, so a dead link is noticed within 20 s.
	KeepaliveInterval time.Duration
	// RoundTrip, when set, is called with the round trip of every answered
	// keepalive@openssh.com request (the keepalive's and Ping's): the link's latency, for
	// metrics. It must not block.
	RoundTrip func(time.Duration)
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
	clientCfg *ssh.ClientConfig // without the host key checks, which clientConfig adds
	hostname  string
	port      string

	mu     sync.Mutex
	conn   *conn
	closed bool
	wg     sync.WaitGroup // keepalive and wait goroutines of every conn
	// One dial at a time, without holding mu; after a failed one, callers fail at once until
	// the back-off has passed (redial), so a host that is down or refusing is not hammered.
	dialing  chan struct{} // closed when the dial in progress ends; nil when none is
	dialErr  error         // the last dial's failure, until a dial succeeds
	redial   time.Time     // no dial before this
	retryGap time.Duration // the back-off after the next failure

	// sessions bounds the SSH sessions open at once below OpenSSH's default MaxSessions (10
	// per connection); channels counts every open channel, for Stats.
	sessions chan struct{}
	channels atomic.Int64
	dials    atomic.Int64
	rtt      atomic.Int64 // nanoseconds, the last keepalive's round trip
	// streamAddr is the address of the host's streaming server in the last session's URL, to
	// connect to while the next Exec or Attach is in flight (PredialStream).
	streamAddr atomic.Pointer[string]
}

// maxSessions is how many sessions Satellite opens at once on one connection: below
// OpenSSH's MaxSessions default of 10, leaving room for an operator's own.
const maxSessions = 8

// Stats is what a Host has open now, for leak checks and metrics.
type Stats struct {
	Connected bool  `json:"connected"`
	Dials     int64 `json:"dials"`    // SSH connections opened so far
	Channels  int64 `json:"channels"` // channels open now: CRI, SFTP, streams, commands
	// RoundTrip is the last answered keepalive's round trip (0 before the first).
	RoundTrip time.Duration `json:"round_trip_ns"`
}

// Stats reports the connection's state.
func (h *Host) Stats() Stats {
	return Stats{Connected: h.Connected(), Dials: h.dials.Load(), Channels: h.channels.Load(), RoundTrip: time.Duration(h.rtt.Load())}
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
	if _, err := knownhosts.New(cfg.KnownHosts); err != nil {
		return nil, fmt.Errorf("load known_hosts: %w", err)
	}
	return &Host{
		sessions: make(chan struct{}, maxSessions),
		cfg:      cfg,
		clientCfg: &ssh.ClientConfig{
			Config: ssh.Config{
				KeyExchanges: modernKeyExchanges,
				Ciphers:      modernCiphers,
				MACs:         modernMACs,
			},
			User:    cfg.User,
			Auth:    []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
			Timeout: cfg.DialTimeout,
		},
		hostname: hostname,
		port:     port,
	}, nil
}

// Addr is the host's SSH address.
func (h *Host) Addr() string { return h.cfg.Addr }

// client returns the live connection, dialing a new one when there is none.
func (h *Host) client(ctx context.Context) (*conn, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrClosed
		}
		if h.conn != nil {
			select {
			case <-h.conn.done:
				h.conn = nil
			default:
				c := h.conn
				h.mu.Unlock()
				return c, nil
			}
		}
		if wait := h.dialing; wait != nil { // someone is dialing: take their connection
			h.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("ssh %s: %w: waiting for the connection: %w", h.cfg.Addr, ErrUnavailable, ctx.Err())
			}
		}
		if until := time.Until(h.redial); until > 0 && h.dialErr != nil {
			err := h.dialErr
			h.mu.Unlock()
			return nil, fmt.Errorf("%w (next attempt in %v)", err, until.Round(100*time.Millisecond))
		}
		done := make(chan struct{})
		h.dialing = done
		h.mu.Unlock()

		c, err := h.dial(ctx)

		h.mu.Lock()
		h.dialing = nil
		close(done)
		switch {
		case err == nil && h.closed:
			h.mu.Unlock()
			_ = c.Close()
			return nil, ErrClosed
		case err == nil:
			h.conn, h.dialErr, h.retryGap = c, nil, 0
		case ctx.Err() == nil: // the host's failure, not the caller giving up
			h.dialErr = err
			h.redial = time.Now().Add(h.backoff())
		}
		h.mu.Unlock()
		return c, err
	}
}

// Reconnection back-off: the first retry after a failed dial waits about a second, each
// further one twice as long, up to about 8 s (±20 % jitter, so that many Satellites that lost
// the same network do not dial in step). Against OpenSSH's MaxStartups (10 unauthenticated
// connections by default) that is one attempt at a time, a few a minute.
const (
	connectTimeout = 5 * time.Second // TCP connect, within DialTimeout
	retryFirst     = time.Second
	retryMax       = 8 * time.Second
)

// backoff returns the wait before the next dial and doubles the next one; h.mu is held.
func (h *Host) backoff() time.Duration {
	if h.retryGap == 0 {
		h.retryGap = retryFirst
	}
	d := h.retryGap
	h.retryGap = min(2*h.retryGap, retryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (h *Host) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DialTimeout)
	defer cancel()
	addr, err := h.dialAddr(ctx)
	if err != nil {
		return nil, err
	}
	// A host that does not answer at all (link down) is given up on sooner than the whole
	// dial's budget, so the next attempt comes sooner once the link is back.
	d := net.Dialer{Timeout: min(h.cfg.DialTimeout, connectTimeout)}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w: %w", h.cfg.Addr, ErrUnavailable, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = tcp.SetDeadline(deadline)
	}
	cfg, presented, err := h.clientConfig()
	if err != nil {
		_ = tcp.Close()
		return nil, err
	}
	sc, chans, reqs, err := ssh.NewClientConn(tcp, h.cfg.Addr, cfg)
	if err != nil {
		_ = tcp.Close()
		return nil, classifyHandshake(h.cfg.Addr, err, *presented)
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

// dialAddr is the address to dial now: Addr, or what Resolve answers.
func (h *Host) dialAddr(ctx context.Context) (string, error) {
	if h.cfg.Resolve == nil {
		return h.cfg.Addr, nil
	}
	addr, err := h.cfg.Resolve(ctx)
	if err != nil {
		return "", fmt.Errorf("ssh %s: look up its address: %w: %w", h.cfg.Addr, ErrUnavailable, err)
	}
	return addr, nil
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
	reply := h.sendKeepalive(c)
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
	dialing := h.dialing
	h.mu.Unlock()
	var err error
	if c != nil {
		err = c.Close()
	}
	if dialing != nil {
		<-dialing // its connection, if any, is closed by the dialer, which sees closed
	}
	h.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
