package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// hostKeyLab is a second sshd on the remote host (port 2222) whose host key the test can
// replace, and a Satellite of its own connected to it.
type hostKeyLab struct {
	t    *testing.T
	e    *env
	dir  string
	sshd *exec.Cmd
	sat  *exec.Cmd
	node string
}

const labSSH = "10.213.0.2:2222"

func keygen(t *testing.T, path string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", append([]string{"-q", "-t", "ed25519", "-N", "", "-f", path}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

func pubKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startSSHD (re)starts the lab sshd with the given host key (and certificate), dropping every
// connection it had, as a host reinstalled or re-keyed does.
func (l *hostKeyLab) startSSHD(key, cert string) {
	l.t.Helper()
	l.stopSSHD()
	authorized, err := os.ReadFile(l.e.get(l.t, "HOST_SSH_KEY") + ".pub")
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, "authorized_keys"), authorized, 0o600); err != nil {
		l.t.Fatal(err)
	}
	cfg := fmt.Sprintf(`ListenAddress %s
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
Subsystem sftp /usr/lib/openssh/sftp-server
`, labSSH, key, l.dir, l.dir)
	if cert != "" {
		cfg += "HostCertificate " + cert + "\n"
	}
	if err := os.WriteFile(filepath.Join(l.dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.sshd = exec.Command("nsenter", "--net=/run/netns/"+l.e.get(l.t, "HOST_NETNS"), "/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(l.dir, "sshd_config"))
	log, err := os.OpenFile(filepath.Join(l.dir, "sshd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		l.t.Fatal(err)
	}
	l.sshd.Stdout, l.sshd.Stderr = log, log
	if err := l.sshd.Start(); err != nil {
		l.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("nsenter", "--net=/run/netns/"+l.e.get(l.t, "HOST_NETNS"), "bash", "-c", "exec 3<>/dev/tcp/10.213.0.2/2222").Run() != nil {
		if time.Now().After(deadline) {
			l.t.Fatal("lab sshd does not listen")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopSSHD stops the listener and every connection it serves (each runs in a child process).
func (l *hostKeyLab) stopSSHD() {
	if l.sshd == nil || l.sshd.Process == nil {
		return
	}
	pidFile, _ := os.ReadFile(filepath.Join(l.dir, "sshd.pid"))
	if pid, err := strconv.Atoi(strings.TrimSpace(string(pidFile))); err == nil {
		_ = exec.Command("pkill", "-KILL", "-P", strconv.Itoa(pid)).Run()
	}
	_ = l.sshd.Process.Kill()
	_ = l.sshd.Wait()
	l.sshd = nil
}

// writeKnownHosts replaces the known_hosts file atomically, as a Secret volume update does.
func (l *hostKeyLab) writeKnownHosts(lines ...string) {
	l.t.Helper()
	tmp := filepath.Join(l.dir, "known_hosts.tmp")
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, "known_hosts")); err != nil {
		l.t.Fatal(err)
	}
}

func (l *hostKeyLab) startSatellite(extra ...string) {
	l.t.Helper()
	l.stopSatellite()
	kubeconfig := filepath.Join(filepath.Dir(l.e.get(l.t, "KUBECONFIG")), "satellite.kubeconfig")
	args := append([]string{"--kubeconfig", kubeconfig, "--node-name", l.node, "--node-ip", "10.213.0.1",
		"--listen-address", "10.213.0.1:10361", "--ssh", "root@" + labSSH, "--ssh-key", l.e.get(l.t, "HOST_SSH_KEY"),
		"--known-hosts", filepath.Join(l.dir, "known_hosts"), "--host-ip", "10.213.0.2",
		"--containerd-socket", l.e.get(l.t, "HOST_CONTAINERD_SOCKET"), "--containerd-root", l.e.get(l.t, "HOST_CONTAINERD_ROOT"),
		"--pod-log-dir", filepath.Join(l.dir, "pods"), "--csr-self-approve",
		"--client-ca-file", filepath.Join(filepath.Dir(l.e.get(l.t, "KUBECONFIG")), "pki", "ca.crt"), "--log-level", "debug",
		"--tunnel=false"}, extra...) // the environment's Satellite routes the one host already
	l.sat = exec.Command("../../_output/bin/satellite", args...)
	log, err := os.OpenFile(filepath.Join(l.dir, "satellite.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		l.t.Fatal(err)
	}
	l.sat.Stdout, l.sat.Stderr = log, log
	if err := l.sat.Start(); err != nil {
		l.t.Fatal(err)
	}
}

func (l *hostKeyLab) stopSatellite() {
	stopGracefully(l.sat)
	l.sat = nil
}

// stopGracefully stops a process the test started (a Satellite) as its pod would be stopped:
// SIGTERM, then SIGKILL after 15 s. A nil or unstarted cmd is left alone.
func stopGracefully(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitReady waits for the node's Ready condition to have status and, unless empty, reason;
// it returns the condition's message.
func (l *hostKeyLab) waitReady(status corev1.ConditionStatus, reason string) string {
	l.t.Helper()
	var msg string
	start := time.Now()
	l.e.waitFor(l.t, 90*time.Second, fmt.Sprintf("node Ready=%s %s", status, reason), func(ctx context.Context) (bool, error) {
		n, err := l.e.client.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == status && (reason == "" || c.Reason == reason) {
				msg = c.Message
				return true, nil
			}
		}
		return false, nil
	})
	l.t.Logf("node Ready=%s %s after %v: %s", status, reason, time.Since(start).Round(100*time.Millisecond), msg)
	return msg
}

func (l *hostKeyLab) nodeEvent(reason string) {
	l.t.Helper()
	l.e.waitFor(l.t, 30*time.Second, "node event "+reason, func(ctx context.Context) (bool, error) {
		evs, err := l.e.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + l.node + ",reason=" + reason})
		return err == nil && len(evs.Items) > 0, err
	})
}

// The host's key is verified on every connection and never falls back: trust on first use
// pins the first key in a Secret; a replaced key is refused (node NotReady, HostKeyMismatch,
// an event naming the presented key) until known_hosts is updated, and then the node recovers;
// a key marked @revoked is refused; a host certificate signed by a @cert-authority is accepted.
func TestIntegrationHostKeyReplaced(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	dir, err := os.MkdirTemp("", "satellite-hostkey-")
	if err != nil {
		t.Fatal(err)
	}
	l := &hostKeyLab{t: t, e: e, dir: dir, node: "satellite-hostkey-" + ns[len(ns)-6:]}
	t.Cleanup(func() {
		l.stopSatellite()
		l.stopSSHD()
		_ = e.client.CoreV1().Nodes().Delete(context.Background(), l.node, metav1.DeleteOptions{})
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "satellite.log"))
			t.Logf("satellite log (tail):\n%s", tail(string(b), 40))
		}
		_ = os.RemoveAll(dir)
	})
	keygen(t, filepath.Join(dir, "key1"))
	keygen(t, filepath.Join(dir, "key2"))
	keygen(t, filepath.Join(dir, "ca"))
	if out, err := exec.Command("ssh-keygen", "-q", "-s", filepath.Join(dir, "ca"), "-I", "satellite-e2e", "-h", "-n", "10.213.0.2",
		filepath.Join(dir, "key2.pub")).CombinedOutput(); err != nil {
		t.Fatalf("sign host key: %v\n%s", err, out)
	}
	key1, key2, ca := pubKey(t, filepath.Join(dir, "key1.pub")), pubKey(t, filepath.Join(dir, "key2.pub")), pubKey(t, filepath.Join(dir, "ca.pub"))
	hostLine := func(k ssh.PublicKey) string {
		return "[10.213.0.2]:2222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}

	// Satellite may create the pin Secret in this namespace, as the chart's Role allows.
	ctx := context.Background()
	if _, err := e.client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pin"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "get"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pin"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pin"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "satellite"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Trust on first use: known_hosts has nothing for the host; the first key is pinned.
	l.writeKnownHosts("# nothing for the lab host yet")
	l.startSSHD(filepath.Join(dir, "key1"), "")
	l.startSatellite("--ssh-trust-on-first-use", "--ssh-pinned-key-secret", ns+"/host-key")
	l.waitReady(corev1.ConditionTrue, "")
	pin, err := e.client.CoreV1().Secrets(ns).Get(ctx, "host-key", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pinned key Secret: %v", err)
	}
	if got := strings.TrimSpace(string(pin.Data["known_hosts"])); got != hostLine(key1) {
		t.Errorf("pinned %q, want %q", got, hostLine(key1))
	}
	l.nodeEvent("HostKeyPinned")

	// The host's key is replaced: refused, never re-trusted.
	l.startSSHD(filepath.Join(dir, "key2"), "")
	msg := l.waitReady(corev1.ConditionFalse, "HostKeyMismatch")
	if !strings.Contains(msg, ssh.FingerprintSHA256(key2)) {
		t.Errorf("HostKeyMismatch message does not name the presented key %s: %q", ssh.FingerprintSHA256(key2), msg)
	}
	l.nodeEvent("HostKeyMismatch")
	time.Sleep(3 * time.Second) // a few more reconnection attempts
	if pin, err = e.client.CoreV1().Secrets(ns).Get(ctx, "host-key", metav1.GetOptions{}); err != nil || strings.TrimSpace(string(pin.Data["known_hosts"])) != hostLine(key1) {
		t.Errorf("the pin changed after the key did: %v %q", err, pin.Data["known_hosts"])
	}

	// The operator updates known_hosts: Satellite recovers without a restart.
	l.writeKnownHosts(hostLine(key2))
	l.waitReady(corev1.ConditionTrue, "")
	l.nodeEvent("NodeReady")

	// The key is revoked.
	l.writeKnownHosts(hostLine(key2), "@revoked * "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key2))))
	l.startSSHD(filepath.Join(dir, "key2"), "")
	if msg := l.waitReady(corev1.ConditionFalse, "HostKeyMismatch"); !strings.Contains(msg, "revoked") {
		t.Errorf("revoked key: message %q does not say revoked", msg)
	}

	// A host certificate from a trusted CA (a Satellite without the pin from first use).
	l.writeKnownHosts("@cert-authority [10.213.0.2]:2222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca))))
	l.startSSHD(filepath.Join(dir, "key2"), filepath.Join(dir, "key2-cert.pub"))
	l.startSatellite()
	l.waitReady(corev1.ConditionTrue, "")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
