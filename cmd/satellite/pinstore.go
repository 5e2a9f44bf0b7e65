package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/remote/hostkey"
)

// pinnedKeyData is the Secret key holding the pinned known_hosts line.
const pinnedKeyData = "known_hosts"

var errNoPinSecret = errors.New("--ssh-trust-on-first-use needs --ssh-pinned-key-secret")

// pinSecret is the hostkey.Store of --ssh-pinned-key-secret: a Secret, created once.
type pinSecret struct {
	client   kubernetes.Interface
	ns, name string
	node     string
}

// newPinner parses --ssh-pinned-key-secret's "namespace/name" and loads an existing pin; a
// key pinned later is reported as a HostKeyPinned event on the node.
func newPinner(ctx context.Context, client kubernetes.Interface, secret, node string, recorder record.EventRecorder) (*hostkey.Pinner, error) {
	ns, name, ok := strings.Cut(secret, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--ssh-pinned-key-secret %q: want namespace/name", secret)
	}
	s := pinSecret{client: client, ns: ns, name: name, node: node}
	return hostkey.New(ctx, s, func(hostport, fp string) {
		recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node)}, corev1.EventTypeWarning,
			"HostKeyPinned", "Host key of %s trusted on first use and pinned in Secret %s/%s: %s", hostport, ns, name, fp)
	})
}

func (s pinSecret) String() string { return s.ns + "/" + s.name }

func (s pinSecret) Load(ctx context.Context) ([]byte, bool, error) {
	sec, err := s.client.CoreV1().Secrets(s.ns).Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read the pinned host key, Secret %s: %w", s, err)
	}
	return sec.Data[pinnedKeyData], true, nil
}

func (s pinSecret) Create(ctx context.Context, hostport string, line []byte) error {
	_, err := s.client.CoreV1().Secrets(s.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns, Labels: map[string]string{"satellite.dev/node": s.node},
			Annotations: map[string]string{"satellite.dev/pinned": "host key of " + hostport + " trusted on first use"}},
		Data: map[string][]byte{pinnedKeyData: line},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("pin the host key in Secret %s/%s: %w", s.ns, s.name, err)
	}
	return nil
}
