package remote

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// A host that refuses connections is dialed again only after a growing, jittered back-off;
// calls in between fail at once with the last error, saying when the next attempt is.
func TestDialBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused
	_, key, _ := ed25519.GenerateKey(nil)
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int32
	h, err := NewHost(Config{Addr: addr, User: "u", Signer: signer, KnownHosts: "/dev/null",
		Resolve: func(context.Context) (string, error) { dials.Add(1); return addr, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	_, first := h.client(ctx)
	if !errors.Is(first, ErrUnavailable) {
		t.Fatalf("first call: %v, want ErrUnavailable", first)
	}
	for i := 0; i < 50; i++ {
		_, err := h.client(ctx)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "next attempt in") {
			t.Fatalf("call during the back-off: %v", err)
		}
	}
	if d := dials.Load(); d != 1 {
		t.Fatalf("%d dials for 51 calls within the back-off, want 1", d)
	}
	// The gaps grow: about 1, 2, 4, 8, 8 s (±20 %).
	h.mu.Lock()
	var gaps []time.Duration
	for i := 0; i < 5; i++ {
		gaps = append(gaps, h.backoff())
	}
	h.mu.Unlock()
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, g := range gaps {
		if g < want[i]*8/10 || g > want[i]*12/10 {
			t.Errorf("back-off %d: %v, want %v ±20%%", i+2, g, want[i])
		}
	}
}
