package doctor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/satellite-vk/satellite/remote"
)

const realSSHD = "/usr/sbin/sshd"

// localHost runs Prepare's commands on this machine through sh -c, as a root SSH login would:
// $SSH_CONNECTION set, a non-zero exit a *remote.ExitError. path, if set, goes in front of PATH.
type localHost struct{ path string }

func (l localHost) Output(ctx context.Context, cmd string) ([]byte, error) {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Env = append(os.Environ(), "SSH_CONNECTION=192.0.2.1 50022 192.0.2.2 22")
	if l.path != "" {
		c.Env = append(c.Env, "PATH="+l.path+":"+os.Getenv("PATH"))
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, &remote.ExitError{Code: exit.ExitCode(), Stderr: stderr.String()}
	}
	return out, err
}

// sshdHost is a directory holding an sshd config with its host key, and a containerd config
// and CNI config that need nothing, so that Prepare's only work is sshd's.
type sshdHost struct {
	dir, main, dropIns, dropIn string
	opts                       PrepareOptions
}

func newSSHDHost(t *testing.T, body string, mode os.FileMode) *sshdHost {
	t.Helper()
	dir := t.TempDir()
	s := &sshdHost{dir: dir, main: filepath.Join(dir, "sshd_config"), dropIns: filepath.Join(dir, "sshd_config.d")}
	s.dropIn = filepath.Join(s.dropIns, tunnelDropIn)
	writeTestFile(t, filepath.Join(dir, "host_key"), hostKeyPEM(t), 0o600)
	writeTestFile(t, filepath.Join(dir, "cni-bin", "loopback"), "#!/bin/sh\n", 0o755)
	writeTestFile(t, filepath.Join(dir, "cni", "10-x.conflist"), loopbackConflist, 0o644)
	writeTestFile(t, filepath.Join(dir, "containerd.toml"), fmt.Sprintf("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n"+
		"  restrict_oom_score_adj = true\n  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n    bin_dir = %q\n    conf_dir = %q\n",
		filepath.Join(dir, "cni-bin"), filepath.Join(dir, "cni")), 0o644)
	head := fmt.Sprintf("HostKey %s/host_key\nPidFile %s/sshd.pid\n", dir, dir)
	writeTestFile(t, s.main, head+strings.ReplaceAll(body, "DIR", dir), mode)
	s.opts = PrepareOptions{ContainerdConfig: filepath.Join(dir, "containerd.toml"), SSHDConfig: s.main,
		Now: func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) }}
	return s
}

func writeTestFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func hostKeyPEM(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

// prepare runs Prepare and returns what it printed.
func (s *sshdHost) prepare(t *testing.T, h Commander, dryRun bool) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := s.opts
	o.DryRun = dryRun
	var out bytes.Buffer
	err := Prepare(ctx, h, o, &out)
	return out.String(), err
}

// permitTunnel is the real sshd's effective PermitTunnel for user, from the address
// localHost's $SSH_CONNECTION names.
func (s *sshdHost) permitTunnel(t *testing.T, user string) string {
	t.Helper()
	out, err := exec.Command(realSSHD, "-T", "-f", s.main, "-C", "user="+user+",host=192.0.2.1,addr=192.0.2.1").CombinedOutput()
	if err != nil {
		t.Fatalf("sshd -T: %v: %s", err, out)
	}
	return sshdSetting(string(out), "permittunnel")
}

// files is every file under the directory, by path, with its mode and text.
func (s *sshdHost) files(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		m[p] = fmt.Sprintf("%v\n%s", info.Mode(), data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sshdRequirements(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs the real sshd -t and -T as root")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root (Prepare edits the config as root, without sudo here)")
	}
	if _, err := os.Stat(realSSHD); err != nil {
		t.Skipf("integration test: %s missing: %v", realSSHD, err)
	}
}

// TestIntegrationPrepareSSHD runs Prepare against configs the real sshd reads, and asks sshd
// (-T) what Satellite's user, and another, get.
func TestIntegrationPrepareSSHD(t *testing.T) {
	sshdRequirements(t)
	t.Run("debian layout: a drop-in", testPrepareDropIn)
	t.Run("no Include: appended to the main config", testPrepareAppend)
	t.Run("already permitted: nothing", testPrepareAlreadyPermitted)
	t.Run("an earlier Match block wins: undone", testPrepareEarlierMatch)
	t.Run("sshd -t rejects the result: undone", testPrepareRejected)
}

const debianLayout = "Include DIR/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nPermitTunnel no\nX11Forwarding yes\n"

func testPrepareDropIn(t *testing.T) {
	t.Parallel()
	s := newSSHDHost(t, debianLayout, 0o644)
	writeTestFile(t, filepath.Join(s.dropIns, "50-cloud-init.conf"), "PasswordAuthentication no\n", 0o644)
	before := s.files(t)

	out, err := s.prepare(t, localHost{}, true)
	if err != nil || !strings.Contains(out, "--- /dev/null\n+++ "+s.dropIn+"\n") || !strings.Contains(out, "+Match User root\n") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if after := s.files(t); !maps.Equal(before, after) {
		t.Fatalf("the dry run changed files:\n%s", out)
	}

	out, err = s.prepare(t, localHost{}, false)
	if err != nil || !strings.Contains(out, "wrote "+s.dropIn+"\n") || !strings.Contains(out, "--reload-sshd. A reload ends no connection.") {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	after := s.files(t)
	if got := after[s.dropIn]; got != "-rw-r--r--\n"+tunnelBlock("root") {
		t.Errorf("drop-in:\n%s", got)
	}
	if after[s.main] != before[s.main] || len(after) != len(before)+1 {
		t.Errorf("more than the drop-in changed: %d files before, %d after", len(before), len(after))
	}
	if root, other := s.permitTunnel(t, "root"), s.permitTunnel(t, "nobody"); root != "point-to-point" || other != "no" {
		t.Errorf("sshd -T: permittunnel %s for root, %s for nobody; want point-to-point and no", root, other)
	}
	s.secondRunChangesNothing(t)
}

func (s *sshdHost) secondRunChangesNothing(t *testing.T) {
	t.Helper()
	before := s.files(t)
	out, err := s.prepare(t, localHost{}, false)
	if err != nil || !strings.Contains(out, "nothing to change for sshd: it permits root Satellite's tunnel") || strings.Contains(out, "wrote") {
		t.Errorf("second run: %v\n%s", err, out)
	}
	if after := s.files(t); !maps.Equal(before, after) {
		t.Errorf("the second run changed files:\n%s", out)
	}
}

func testPrepareAppend(t *testing.T) {
	t.Parallel()
	// The config ends inside a Match block: Satellite's Match line ends it.
	s := newSSHDHost(t, "Include DIR/other/*.cfg\nPermitTunnel no\nMatch User bob\n  X11Forwarding yes", 0o600)
	old := s.files(t)[s.main]
	out, err := s.prepare(t, localHost{}, false)
	backup := s.main + ".satellite-backup-20260501T120000Z"
	if err != nil || !strings.Contains(out, "backed up "+s.main+" to "+backup+"\nwrote "+s.main+"\n") {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	after := s.files(t)
	if want := old + "\n\n" + tunnelBlock("root"); after[s.main] != want {
		t.Errorf("main config:\n%s\nwant:\n%s", after[s.main], want)
	}
	if after[backup] != old {
		t.Errorf("backup:\n%s\nwant:\n%s", after[backup], old)
	}
	if root, bob := s.permitTunnel(t, "root"), s.permitTunnel(t, "bob"); root != "point-to-point" || bob != "no" {
		t.Errorf("sshd -T: permittunnel %s for root, %s for bob; want point-to-point and no", root, bob)
	}
	s.secondRunChangesNothing(t)
}

func testPrepareAlreadyPermitted(t *testing.T) {
	t.Parallel()
	s := newSSHDHost(t, debianLayout+"Match User root\n  PermitTunnel yes\n", 0o644)
	s.secondRunChangesNothing(t)
}

func testPrepareEarlierMatch(t *testing.T) {
	t.Parallel()
	s := newSSHDHost(t, debianLayout, 0o644)
	site := filepath.Join(s.dropIns, "50-site.conf")
	writeTestFile(t, site, "Match User root\n  PermitTunnel no\n", 0o644)
	before := s.files(t)
	out, err := s.prepare(t, localHost{}, false)
	if err == nil || !strings.Contains(err.Error(), "still says permittunnel no for root") || !strings.Contains(err.Error(), "; fix it in "+site+", then run this again") {
		t.Errorf("prepare: %v\n%s", err, out)
	}
	if !strings.Contains(out, "wrote "+s.dropIn+"\nput "+s.dropIn+" back as it was\n") {
		t.Errorf("output:\n%s", out)
	}
	if after := s.files(t); !maps.Equal(before, after) {
		t.Errorf("files left changed: %d before, %d after", len(before), len(after))
	}
}

// testPrepareRejected puts an sshd in front of PATH that passes everything to the real one
// but fails -t, as sshd -t fails on a config it cannot load.
func testPrepareRejected(t *testing.T) {
	t.Parallel()
	s := newSSHDHost(t, "PermitTunnel no\n", 0o600)
	bin := filepath.Join(s.dir, "bin")
	writeTestFile(t, filepath.Join(bin, "sshd"), "#!/bin/sh\ncase \" $* \" in *\" -t \"*) echo 'sshd_config line 9: Bad configuration option' >&2; exit 255;; esac\n"+
		"exec "+realSSHD+" \"$@\"\n", 0o755)
	old := s.files(t)[s.main]
	out, err := s.prepare(t, localHost{path: bin}, false)
	if err == nil || !strings.Contains(err.Error(), "sshd -t rejects "+s.main+" with the change to "+s.main+", so it was undone") ||
		!strings.Contains(err.Error(), "Bad configuration option") {
		t.Errorf("prepare: %v\n%s", err, out)
	}
	if got := s.files(t)[s.main]; got != old {
		t.Errorf("main config not restored:\n%s\nwant:\n%s", got, old)
	}
}

// TestIntegrationPrepareReloadsSSHD runs sshd on a loopback port with the config Prepare
// changes, and checks that --reload-sshd reloads it while an open session carries on.
func TestIntegrationPrepareReloadsSSHD(t *testing.T) {
	sshdRequirements(t)
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("integration test: systemd runs here, so the reload would go to this machine's own sshd (systemctl reload ssh)")
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("integration test: no ssh client")
	}
	port := freePort(t)
	s := newSSHDHost(t, fmt.Sprintf("ListenAddress 127.0.0.1:%d\nAuthorizedKeysFile DIR/authorized_keys\nStrictModes no\nUsePAM no\n", port), 0o644)
	key := filepath.Join(s.dir, "client_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(s.dir, "authorized_keys"), string(pub), 0o600)
	startSSHD(t, s, port)

	session := sshCommand(key, port, "echo before; sleep 2; echo after")
	stdout, err := session.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); line != "before\n" {
		t.Fatalf("session: %q, %v", line, err)
	}
	s.opts.ReloadSSHD = true
	out, err := s.prepare(t, localHost{}, false)
	if err != nil || !strings.Contains(out, "reloaded sshd (kill -HUP ") {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	rest, _ := io.ReadAll(r)
	if err := session.Wait(); err != nil || string(rest) != "after\n" {
		t.Errorf("the session open across the reload: %v, printed %q after it", err, rest)
	}
	if out, err := sshCommand(key, port, "echo new").CombinedOutput(); err != nil || !strings.HasSuffix(string(out), "new\n") {
		t.Errorf("a connection after the reload: %v: %s", err, out)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
	if !strings.Contains(string(log), "Received SIGHUP; restarting.") {
		t.Errorf("sshd was not reloaded; its log:\n%s", log)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD runs the real sshd on s's config until the test ends, and waits until it listens.
func startSSHD(t *testing.T, s *sshdHost, port int) {
	t.Helper()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // its privilege separation directory
		t.Fatal(err)
	}
	d := exec.Command(realSSHD, "-D", "-E", filepath.Join(s.dir, "sshd.log"), "-f", s.main)
	if err := d.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		_ = d.Process.Kill()
		_ = d.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("sshd never listened on port %d: %v", port, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func sshCommand(key string, port int, cmd string) *exec.Cmd {
	return exec.Command("ssh", "-i", key, "-p", fmt.Sprint(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1", cmd)
}
