package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// echoChannel is a channel type the test server accepts: it writes back the open payload,
// then every byte it reads.
const echoChannel = "echo@satellite.test"

func echo(nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	if _, err := ch.Write(nc.ExtraData()); err != nil {
		return
	}
	_, _ = io.Copy(ch, ch)
}

func TestOpenChannel(t *testing.T) {
	t.Parallel()
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := mustSigner(t)
	srv := startSSHServer(t, hostKey, clientKey)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	addr := srv.ln.Addr().String()
	line := "[127.0.0.1]:" + addr[strings.LastIndex(addr, ":")+1:] + " " + string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(Config{Addr: addr, User: "root", Signer: clientKey, KnownHosts: kh, KeepaliveInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, _, err := h.OpenChannel(ctx, "nope@satellite.test", nil); err == nil {
		t.Fatal("a channel type the server rejects was opened")
	}
	ch, _, err := h.OpenChannel(ctx, echoChannel, []byte("payload|"))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Stats().Channels; got != 1 {
		t.Errorf("open channels %d, want 1", got)
	}
	if _, err := ch.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("payload|data"))
	if _, err := io.ReadFull(ch, buf); err != nil || string(buf) != "payload|data" {
		t.Fatalf("read %q, %v; want the payload then the echo", buf, err)
	}
	_ = ch.Close()
	_ = ch.Close()
	if got := h.Stats().Channels; got != 0 {
		t.Errorf("open channels after close %d, want 0", got)
	}
}
