package images

import (
	"context"
	"errors"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
)

// CredentialProvider is a registry credential provider, as the kubelet's
// ecr-credential-provider plugin is to it.
type CredentialProvider interface {
	// Credentials returns the credentials for a repository (host and path), none for a
	// registry it does not serve.
	Credentials(ctx context.Context, repository string) ([]Credential, error)
}

// SecretGetter reads the pods' image pull secrets.
type SecretGetter interface {
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// pullCredentials are the credentials to try for a repository: those of the pod's image pull
// secrets whose registry matches, then those of a registry credential provider (ECR). The
// error is why some could not be had, to show if the pull fails.
func (m *Manager) pullCredentials(ctx context.Context, pod *corev1.Pod, repo string) ([]Credential, error) {
	creds, err := m.secretCredentials(ctx, pod, repo)
	if m.registries == nil {
		return creds, err
	}
	more, perr := m.registries.Credentials(ctx, repo)
	return append(creds, more...), errors.Join(err, perr)
}

// secretCredentials are the credentials of the pod's image pull secrets for a repository. A
// pull secret that cannot be read gets the kubelet's event FailedToRetrieveImagePullSecret
// and is left out.
func (m *Manager) secretCredentials(ctx context.Context, pod *corev1.Pod, repo string) ([]Credential, error) {
	var secrets []*corev1.Secret
	var failed []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		s, err := m.secrets.Secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			log.G(ctx).WithError(err).WithField("secret", ref.Name).Warn("unable to retrieve pull secret, the image pull may not succeed")
			failed = append(failed, ref.Name)
			continue
		}
		secrets = append(secrets, s)
	}
	if len(failed) > 0 {
		m.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(failed, ", "))
	}
	ring, err := newKeyring(secrets)
	if err != nil {
		return nil, err
	}
	return ring.lookup(repo), nil
}
