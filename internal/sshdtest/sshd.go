// Package sshdtest starts Debian's sshd in a network namespace of its own, for integration
// tests that need a real OpenSSH server acting as a remote host: `ip netns exec` gives it
// (and every command run over SSH) the namespace's interfaces, routes and /sys/class/net.
package sshdtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/satellite-vk/satellite/remote"
)

const sshd = "/usr/sbin/sshd"

// Server is an sshd in its own network namespace, reached over a veth pair.
type Server struct {
	// Netns is the namespace's name.
	Netns string
	// Addr is sshd's address in the namespace; Peer is the test's end of the veth pair.
	Addr, Peer netip.Addr
	// Signer is the key sshd authorizes for root; HostKey is sshd's.
	Signer  ssh.Signer
	HostKey ssh.PublicKey
}

// Requirements skips t under -short, and when not root or when sshd, ip or /dev/net/tun is
// missing.
func Requirements(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs root, sshd and a network namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root for network namespaces")
	}
	for _, p := range []string{sshd, "/dev/net/tun"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("integration test: %s missing: %v", p, err)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("integration test: iproute2's ip missing")
	}
}

// Start creates the namespace sat-tuntest-<pid>, a veth pair with a /30 of 10.231.0.0/24
// chosen by pid, and sshd listening on the namespace's end with PermitTunnel yes. All of it
// is removed in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	Requirements(t)
	pid := os.Getpid()
	base := 4 * (pid % 63)
	s := &Server{
		Netns: fmt.Sprintf("sat-tuntest-%d", pid),
		Peer:  netip.AddrFrom4([4]byte{10, 231, 0, byte(base + 1)}),
		Addr:  netip.AddrFrom4([4]byte{10, 231, 0, byte(base + 2)}),
	}
	outer, inner := fmt.Sprintf("stt%da", pid), fmt.Sprintf("stt%db", pid)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", s.Netns).Run()
		_ = exec.Command("ip", "link", "del", outer).Run()
	})
	run(t, "ip", "netns", "add", s.Netns)
	run(t, "ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
	run(t, "ip", "link", "set", inner, "netns", s.Netns)
	run(t, "ip", "addr", "add", s.Peer.String()+"/30", "dev", outer)
	run(t, "ip", "link", "set", outer, "up")
	s.run(t, "ip", "link", "set", "lo", "up")
	s.run(t, "ip", "addr", "add", s.Addr.String()+"/30", "dev", inner)
	s.run(t, "ip", "link", "set", inner, "up")
	s.startSSHD(t)
	return s
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

func (s *Server) run(t testing.TB, args ...string) {
	t.Helper()
	run(t, "ip", append([]string{"netns", "exec", s.Netns}, args...)...)
}

// Command is a command run inside the namespace.
func (s *Server) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", s.Netns, name}, args...)...)
}

func (s *Server) startSSHD(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	hostPub, hostPEM := newKey(t)
	clientPub, clientPEM := newKey(t)
	s.HostKey = hostPub
	var err error
	if s.Signer, err = ssh.ParsePrivateKey(clientPEM); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "host_key"), hostPEM)
	write(t, filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub))
	write(t, filepath.Join(dir, "sshd_config"), []byte(Config(s.Addr, dir)))
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := s.Command(ctx, sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("sshd log:\n%s", log)
		}
	})
	s.waitListening(t)
}

// Config is the sshd_config the server runs with: the lines a host needs for the tunnel
// are PermitTunnel (point-to-point or yes) and a login for Satellite's user.
func Config(addr netip.Addr, dir string) string {
	return fmt.Sprintf(`ListenAddress %s:22
HostKey %s/host_key
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitTunnel yes
AllowTcpForwarding yes
PidFile none
LogLevel DEBUG1
`, addr, dir, dir)
}

func (s *Server) waitListening(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.SSHAddr())
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("sshd never listened on %s: %v", s.SSHAddr(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SSHAddr is sshd's host:port.
func (s *Server) SSHAddr() string { return netip.AddrPortFrom(s.Addr, 22).String() }

// Dial connects as root, checking sshd's host key; the connection closes in t.Cleanup.
func (s *Server) Dial(t testing.TB) *ssh.Client {
	t.Helper()
	return s.DialVia(t, s.SSHAddr())
}

// DialVia is Dial through addr, a relay to the server.
func (s *Server) DialVia(t testing.TB, addr string) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.Signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh to %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newKey(t testing.TB) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, pem.EncodeToMemory(block)
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Host is a *remote.Host for root at the server, its key checked against a known_hosts
// file; it closes in t.Cleanup.
func (s *Server) Host(t testing.TB) *remote.Host {
	t.Helper()
	return s.HostVia(t, s.SSHAddr())
}

// HostVia is Host dialling addr, a relay to the server, instead (remote.Config.Resolve).
func (s *Server) HostVia(t testing.TB, addr string) *remote.Host {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	write(t, kh, []byte(s.Addr.String()+" "+string(ssh.MarshalAuthorizedKey(s.HostKey))))
	cfg := remote.Config{Addr: s.SSHAddr(), User: "root", Signer: s.Signer, KnownHosts: kh}
	if addr != s.SSHAddr() {
		cfg.Resolve = func(context.Context) (string, error) { return addr, nil }
	}
	h, err := remote.NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
