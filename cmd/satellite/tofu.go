package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// pinnedKeyData is the Secret key holding the pinned known_hosts line.
const pinnedKeyData = "known_hosts"

// pinner implements trust on first use: a host that no known_hosts line names is trusted once,
// and its key is pinned in a Secret (and a local known_hosts file read with the others), so
// every later connection, by this Satellite or the next, must present the same key.
type pinner struct {
	client   kubernetes.Interface
	ns, name string
	file     string
	node     string
	recorder record.EventRecorder
}

// newPinner parses "namespace/name" and loads an existing pin into a private file.
func newPinner(ctx context.Context, client kubernetes.Interface, secret, node string, recorder record.EventRecorder) (*pinner, error) {
	ns, name, ok := strings.Cut(secret, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--ssh-pinned-key-secret %q: want namespace/name", secret)
	}
	dir, err := os.MkdirTemp("", "satellite-pinned-")
	if err != nil {
		return nil, fmt.Errorf("trust on first use: %w", err)
	}
	p := &pinner{client: client, ns: ns, name: name, file: filepath.Join(dir, "known_hosts"), node: node, recorder: recorder}
	s, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("read the pinned host key, Secret %s: %w", secret, err)
	}
	if err := os.WriteFile(p.file, s.Data[pinnedKeyData], 0o600); err != nil {
		return nil, fmt.Errorf("trust on first use: %w", err)
	}
	log.G(ctx).WithField("secret", secret).Info("host key pinned earlier is in force")
	return p, nil
}

// pin trusts key for hostport once and records it. It fails, refusing the connection, if the
// Secret cannot be written or already holds a pin (another Satellite pinned a key meanwhile):
// trust is extended once, never twice.
func (p *pinner) pin(hostport string, key ssh.PublicKey) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "22"
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, port))}, key) + "\n"
	_, err = p.client.CoreV1().Secrets(p.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns, Labels: map[string]string{"satellite.dev/node": p.node},
			Annotations: map[string]string{"satellite.dev/pinned": "host key of " + hostport + " trusted on first use"}},
		Data: map[string][]byte{pinnedKeyData: []byte(line)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("trust on first use: pin the host key in Secret %s/%s: %w", p.ns, p.name, err)
	}
	if err := os.WriteFile(p.file, []byte(line), 0o600); err != nil {
		return fmt.Errorf("trust on first use: %w", err)
	}
	fp := key.Type() + " " + ssh.FingerprintSHA256(key)
	log.G(ctx).WithField("host", hostport).WithField("key", fp).WithField("secret", p.ns+"/"+p.name).
		Warn("trusted the host's key on first use and pinned it; verify this fingerprint out of band")
	p.recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: p.node, UID: types.UID(p.node)}, corev1.EventTypeWarning,
		"HostKeyPinned", "Host key of %s trusted on first use and pinned in Secret %s/%s: %s", hostport, p.ns, p.name, fp)
	return nil
}

var errNoPinSecret = errors.New("--ssh-trust-on-first-use needs --ssh-pinned-key-secret")
