package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshServer is an in-process sshd that accepts one client key and answers keepalives.
type sshServer struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startSSHServer(t *testing.T, hostKey, clientKey ssh.Signer) *sshServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) != string(clientKey.PublicKey().Marshal()) {
			return nil, errors.New("unknown key")
		}
		return nil, nil
	}}
	cfg.AddHostKey(hostKey)
	s := &sshServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, cfg)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.dropAll()
		s.wg.Wait()
	})
	return s
}

func (s *sshServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		_ = c.Close()
		return
	}
	s.accepted.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs) // answers keepalive@openssh.com with false: still an answer
	}()
	for ch := range chans {
		if ch.ChannelType() != echoChannel {
			_ = ch.Reject(ssh.Prohibited, "no channels here")
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			echo(ch)
		}()
	}
	_ = sc.Close()
}

// dropAll cuts every connection, as a stopped instance does.
func (s *sshServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// TestResolveBeforeEachDial: with Resolve set, each new connection goes to the address it
// answers then, and the host key is checked under Addr (the name known_hosts holds), so a host
// that came back at another address is reached there with its key still verified.
func TestResolveBeforeEachDial(t *testing.T) {
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
	before := startSSHServer(t, hostKey, clientKey)
	after := startSSHServer(t, hostKey, clientKey)

	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := "i-0123456789abcdef0 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))) + "\n"
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	var current atomic.Value
	current.Store(before.ln.Addr().String())
	var lookups atomic.Int64
	h, err := NewHost(Config{
		Addr: "i-0123456789abcdef0:22", User: "root", Signer: clientKey, KnownHosts: kh,
		Resolve: func(context.Context) (string, error) {
			lookups.Add(1)
			return current.Load().(string), nil
		},
		KeepaliveInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := h.Ping(ctx); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if err := h.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lookups.Load(); got != 1 {
		t.Fatalf("address looked up %d times for one connection, want 1", got)
	}

	current.Store(after.ln.Addr().String())
	before.dropAll()
	for h.Connected() {
		select {
		case <-ctx.Done():
			t.Fatal("the dropped connection was never noticed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := h.Ping(ctx); err != nil {
		t.Fatalf("reconnect to the new address: %v", err)
	}
	if b, a := before.accepted.Load(), after.accepted.Load(); b != 1 || a != 1 {
		t.Fatalf("connections: %d to the old address, %d to the new; want 1 and 1", b, a)
	}
	if st := h.Stats(); st.Dials != 2 || !st.Connected {
		t.Fatalf("stats %+v, want 2 dials and connected", st)
	}
}

func TestResolveErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(Config{
		Addr: "gpu-1:22", User: "root", Signer: mustSigner(t), KnownHosts: kh,
		Resolve: func(context.Context) (string, error) {
			return "", errors.New("instance i-0123456789abcdef0 is stopped")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.Ping(context.Background())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v does not wrap ErrUnavailable", err)
	}
	want := "ssh gpu-1:22: look up its address: host unavailable: instance i-0123456789abcdef0 is stopped"
	if err.Error() != want {
		t.Fatalf("error\n %q\nwant\n %q", err, want)
	}
}
