package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/satellite-vk/satellite/remote"
)

// The SSH link is verified against known_hosts with no fallback: a host presenting another key
// is refused with a HostKeyError; the right key connects, runs commands and reports exit codes.
func TestIntegrationSSHHostKeyVerified(t *testing.T) {
	e := loadEnv(t)
	signer, err := remote.LoadSigner(e.get(t, "HOST_SSH_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	user, addr, _ := strings.Cut(e.get(t, "HOST_SSH"), "@")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	impostor, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	hostname := strings.TrimSuffix(addr, ":22")
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(wrong, []byte(fmt.Sprintf("%s %s", hostname, ssh.MarshalAuthorizedKey(impostor))), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := remote.NewHost(remote.Config{Addr: addr, User: user, Signer: signer, KnownHosts: wrong})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.Ping(ctx)
	var hk *remote.HostKeyError
	if !errors.As(err, &hk) {
		t.Fatalf("connecting with the wrong host key: %v, want a HostKeyError", err)
	}
	if _, err := h.Output(ctx, "true"); !errors.As(err, &hk) {
		t.Errorf("a command after the refusal: %v, want a HostKeyError again", err)
	}

	good, err := remote.NewHost(remote.Config{Addr: addr, User: user, Signer: signer, KnownHosts: e.get(t, "HOST_KNOWN_HOSTS")})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	out, err := good.Output(ctx, "echo hello; echo oops >&2")
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	_, err = good.Output(ctx, "echo failing >&2; exit 42")
	var exit *remote.ExitError
	if !errors.As(err, &exit) || exit.Code != 42 || !strings.Contains(exit.Stderr, "failing") {
		t.Errorf("exit 42: %v", err)
	}
	if err := good.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := good.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := good.Output(ctx, "true"); !errors.Is(err, remote.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
