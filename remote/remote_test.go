package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTranslateStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.NotFound, ErrNotFound},
		{codes.Unavailable, ErrUnavailable},
		{codes.DeadlineExceeded, ErrUnavailable},
		{codes.DeadlineExceeded, ErrDeadlineExceeded}, // an ExecSync that outran its timeout
		{codes.Unimplemented, ErrUnimplemented},
		{codes.InvalidArgument, ErrInvalid},
		{codes.Canceled, context.Canceled},
	}
	for _, tt := range tests {
		err := translateStatus("ContainerStatus", status.Error(tt.code, "boom"))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v does not wrap %v", tt.code, err, tt.want)
		}
		if _, ok := status.FromError(err); ok {
			t.Errorf("%s: %v is still a gRPC status; callers must not need gRPC to read it", tt.code, err)
		}
	}
	if err := translateStatus("x", status.Error(codes.Internal, "disk on fire")); errors.Is(err, ErrNotFound) || err == nil {
		t.Errorf("internal error translated to %v", err)
	}
	if translateStatus("x", nil) != nil {
		t.Error("nil not kept")
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"plain":       "'plain'",
		"with space":  "'with space'",
		"it's":        `'it'\''s'`,
		"$(rm -rf /)": "'$(rm -rf /)'",
		"":            "''",
	}
	for in, want := range tests {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNewHostNeedsKnownHosts(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewHost(Config{Addr: "192.0.2.1:22", User: "u", Signer: signer, KnownHosts: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing known_hosts file was accepted")
	}
	if _, err := NewHost(Config{Addr: "192.0.2.1:22", User: "u", KnownHosts: "/dev/null"}); err == nil {
		t.Error("no private key accepted")
	}
}

// The handshake offers only the host key types known_hosts holds for the host, so a host
// with several keys is verified against the one we know.
func TestHostKeyAlgorithmsFromKnownHosts(t *testing.T) {
	t.Parallel()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[192.0.2.1]:2222 %s", ssh.MarshalAuthorizedKey(sshPub))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(Config{Addr: "192.0.2.1:2222", User: "u", Signer: mustSigner(t), KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := h.clientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.HostKeyAlgorithms; len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("host key algorithms = %v, want [ssh-ed25519]", got)
	}
	other, err := NewHost(Config{Addr: "192.0.2.9:22", User: "u", Signer: mustSigner(t), KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err = other.clientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.HostKeyAlgorithms; len(got) == 0 || slices.Contains(got, ssh.KeyAlgoRSA) || slices.Contains(got, ssh.KeyAlgoDSA) {
		t.Errorf("unknown host: algorithms = %v, want the modern ones (no SHA-1 RSA, no DSA)", got)
	}
}

func mustSigner(t *testing.T) ssh.Signer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A @cert-authority line for the host makes the handshake ask for a host certificate, which
// the known_hosts callback verifies against the authority.
func TestHostKeyAlgorithmsForCertAuthority(t *testing.T) {
	t.Parallel()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	ca, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("@cert-authority [192.0.2.1]:2222 %s", ssh.MarshalAuthorizedKey(ca))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(Config{Addr: "192.0.2.1:2222", User: "u", Signer: mustSigner(t), KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := h.clientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.HostKeyAlgorithms; len(got) != 1 || got[0] != ssh.CertAlgoED25519v01 {
		t.Errorf("host key algorithms = %v, want [%s]", got, ssh.CertAlgoED25519v01)
	}
}
