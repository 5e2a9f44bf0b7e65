package hostkey

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// memStore is a Store in memory that, like a Secret's create, refuses a second pin.
type memStore struct{ line []byte }

func (m *memStore) Load(context.Context) ([]byte, bool, error) { return m.line, m.line != nil, nil }
func (m *memStore) String() string                             { return "mem" }

func (m *memStore) Create(_ context.Context, _ string, line []byte) error {
	if m.line != nil {
		return errors.New("already pinned")
	}
	m.line = line
	return nil
}

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The first key is pinned in the store and the file, and reported; a second pin is refused;
// the next Pinner on the same store verifies against the first key and refuses another.
func TestPin(t *testing.T) {
	t.Parallel()
	store := &memStore{}
	var reported []string
	p, err := New(context.Background(), store, func(hostport, fp string) { reported = append(reported, hostport+" "+fp) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := os.Stat(p.File()); !os.IsNotExist(err) {
		t.Fatalf("file before any pin: %v", err)
	}
	first, second := newKey(t), newKey(t)
	if err := p.Pin("192.0.2.10:2222", first); err != nil {
		t.Fatal(err)
	}
	if len(reported) != 1 || !strings.HasPrefix(reported[0], "192.0.2.10:2222 ssh-ed25519 SHA256:") {
		t.Errorf("reported %q", reported)
	}
	if err := p.Pin("192.0.2.10:2222", second); err == nil || err.Error() != "trust on first use: already pinned" {
		t.Errorf("second pin: %v", err)
	}

	next, err := New(context.Background(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	check, err := knownhosts.New(next.File())
	if err != nil {
		t.Fatal(err)
	}
	addr := fakeAddr("192.0.2.10:2222")
	if err := check("192.0.2.10:2222", addr, first); err != nil {
		t.Errorf("the pinned key: %v", err)
	}
	var keyErr *knownhosts.KeyError
	if err := check("192.0.2.10:2222", addr, second); !errors.As(err, &keyErr) || len(keyErr.Want) != 1 {
		t.Errorf("another key: %v, want a mismatch with the pinned one", err)
	}
	dir := next.File()
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after Close: %v", err)
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
