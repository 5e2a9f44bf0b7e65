package hostkey

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Store keeps the pinned host key, as one known_hosts line, where every Satellite of the node
// finds it.
type Store interface {
	// Load returns the line pinned earlier; found is false when nothing is pinned yet.
	Load(ctx context.Context) (line []byte, found bool, err error)
	// Create pins line, the key of hostport. It fails when a pin already exists.
	Create(ctx context.Context, hostport string, line []byte) error
	// String names the store in logs.
	String() string
}

// Pinner implements trust on first use: a host that no known_hosts line names is trusted once,
// and its key is pinned in the Store (and a local known_hosts file read with the others), so
// every later connection, by this Satellite or the next, must present the same key.
type Pinner struct {
	store  Store
	file   string
	pinned func(hostport, fingerprint string)
}

// New loads an existing pin from store into a private known_hosts file (File). pinned, if not
// nil, is told of every key Pin trusts, by its fingerprint.
func New(ctx context.Context, store Store, pinned func(hostport, fingerprint string)) (*Pinner, error) {
	dir, err := os.MkdirTemp("", "satellite-pinned-")
	if err != nil {
		return nil, fmt.Errorf("trust on first use: %w", err)
	}
	p := &Pinner{store: store, file: filepath.Join(dir, "known_hosts"), pinned: pinned}
	line, found, err := store.Load(ctx)
	switch {
	case err != nil:
		os.RemoveAll(dir)
		return nil, err
	case !found:
		return p, nil
	}
	if err := os.WriteFile(p.file, line, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("trust on first use: %w", err)
	}
	log.G(ctx).WithField("secret", store.String()).Info("host key pinned earlier is in force")
	return p, nil
}

// File is the known_hosts file holding the pin, for remote.Config.ExtraKnownHosts; it does not
// exist while nothing is pinned.
func (p *Pinner) File() string { return p.file }

// Close removes File.
func (p *Pinner) Close() error { return os.RemoveAll(filepath.Dir(p.file)) }

// Pin trusts key for hostport once and records it, for remote.Config.TrustOnFirstUse. It
// fails, refusing the connection, if the store cannot be written or already holds a pin
// (another Satellite pinned a key meanwhile): trust is extended once, never twice.
func (p *Pinner) Pin(hostport string, key ssh.PublicKey) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "22"
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, port))}, key) + "\n"
	if err := p.store.Create(ctx, hostport, []byte(line)); err != nil {
		return fmt.Errorf("trust on first use: %w", err)
	}
	if err := os.WriteFile(p.file, []byte(line), 0o600); err != nil {
		return fmt.Errorf("trust on first use: %w", err)
	}
	fp := key.Type() + " " + ssh.FingerprintSHA256(key)
	log.G(ctx).WithField("host", hostport).WithField("key", fp).WithField("secret", p.store.String()).
		Warn("trusted the host's key on first use and pinned it; verify this fingerprint out of band")
	if p.pinned != nil {
		p.pinned(hostport, fp)
	}
	return nil
}
