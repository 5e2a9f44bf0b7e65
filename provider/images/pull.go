package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// present reports whether the image is on the host and the pod may use it (pullrecords.go).
func (m *Manager) present(ctx context.Context, pod *corev1.Pod, spec *runtimeapi.ImageSpec, repo string) (bool, error) {
	st, err := m.cri.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err != nil {
		return false, fmt.Errorf("image status %q: %w", spec.Image, err)
	}
	img := st.GetImage()
	if img == nil {
		return false, nil
	}
	mayUse, err := m.records.mayUse(ctx, spec.Image, repo, img.GetId(), func() []Credential {
		creds, _ := m.secretCredentials(ctx, pod, repo)
		return creds
	})
	if err != nil {
		log.G(ctx).WithError(err).WithField("image", spec.Image).Warn("cannot tell who may use the image on the host: pulling it again with the pod's credentials")
	}
	return mayUse, nil
}

// neverPull is the kubelet's two events for an image that is absent with the pull policy
// Never: the image manager's (once), then the container's failure (the caller's).
func (m *Manager) neverPull(pod *corev1.Pod, c *corev1.Container, waiting string) *WaitingError {
	msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
	if waiting != "ErrImageNeverPull" {
		m.recorder.Event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", msg)
	}
	return &WaitingError{Reason: "ErrImageNeverPull", Message: msg, Err: errNotAvailable}
}

// backingOff is the kubelet's ImagePullBackOff: the event without the last error (once), the
// status with it.
func (m *Manager) backingOff(pod *corev1.Pod, c *corev1.Container, waiting, lastErr string) *WaitingError {
	msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
	status := msg
	if lastErr != "" {
		status += ": ErrImagePull: " + lastErr
	}
	if waiting != "ImagePullBackOff" {
		m.recorder.Event(pod, corev1.EventTypeNormal, "BackOff", msg)
	}
	return &WaitingError{Reason: "ImagePullBackOff", Message: status, Err: errNotAvailable}
}

// pullFor pulls the container's image with the pod's credentials, recording the pull on the
// host, with the kubelet's events. On failure it returns the back-off to wait.
func (m *Manager) pullFor(ctx context.Context, pod *corev1.Pod, c *corev1.Container, spec *runtimeapi.ImageSpec, sb *runtimeapi.PodSandboxConfig, repo string, repoErr error) (time.Duration, error) {
	var creds []Credential
	credErr := repoErr
	if repoErr == nil {
		creds, credErr = m.pullCredentials(ctx, pod, repo)
	}
	m.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := time.Now()
	if err := m.records.begin(ctx, c.Image); err != nil {
		log.G(ctx).WithError(err).WithField("image", c.Image).Warn("cannot record the pull on the host")
	}
	ref, used, err := m.pull(ctx, spec, sb, creds)
	m.recordDone(ctx, c.Image, repo, ref, used)
	if err != nil {
		if credErr != nil {
			err = fmt.Errorf("%w (%v)", err, credErr)
		}
		m.recorder.Event(pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		wait := m.failures.failed(pod.UID, c.Name, err.Error())
		return wait, &WaitingError{Reason: "ErrImagePull", Message: err.Error(), Err: fmt.Errorf("pull %q: %w", c.Image, err)}
	}
	m.failures.pulled(pod.UID, c.Name)
	took := time.Since(start).Truncate(time.Millisecond)
	// The kubelet's message; its pulls may wait for one another, Satellite's do not.
	m.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting). Image size: %d bytes.",
		c.Image, took, took, m.imageSize(ctx, ref))
	return 0, nil
}

// recordDone records the pull's end even when the pod went away meanwhile: an intent left on
// the host would make every later pod of the image pull it again, after a restart.
func (m *Manager) recordDone(ctx context.Context, image, repo, ref string, used *Credential) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.records.done(rctx, image, repo, ref, used); err != nil {
		log.G(ctx).WithError(err).WithField("image", image).Warn("cannot record the pull on the host")
	}
}

// imageSize is the size of the image with that ID on the host, 0 when it cannot be read.
func (m *Manager) imageSize(ctx context.Context, id string) uint64 {
	st, err := m.cri.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: id}})
	if err != nil {
		log.G(ctx).WithError(err).WithField("image", id).Debug("cannot read the pulled image's size")
		return 0
	}
	return st.GetImage().GetSize()
}

// pull pulls the image with each credential in turn until one works, as the kubelet does
// (kuberuntime's pullImage), and without credentials when there are none. It returns the
// image's ID and the credential that pulled it (nil: none).
func (m *Manager) pull(ctx context.Context, spec *runtimeapi.ImageSpec, sb *runtimeapi.PodSandboxConfig, creds []Credential) (string, *Credential, error) {
	if len(creds) == 0 {
		resp, err := m.cri.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, SandboxConfig: sb})
		if err != nil {
			return "", nil, pullError{err}
		}
		return resp.GetImageRef(), nil, nil
	}
	var errs pullError
	for i, cred := range creds {
		auth := &runtimeapi.AuthConfig{Username: cred.Username, Password: cred.Password}
		resp, err := m.cri.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, Auth: auth, SandboxConfig: sb})
		if err == nil {
			return resp.GetImageRef(), &creds[i], nil
		}
		errs = append(errs, err)
	}
	return "", nil, errs
}

// pullError is a failed pull, worded as the kubelet words it: each attempt's error as its
// runtime client gives it (remote_image.go: the runtime's message alone for the code Unknown,
// gRPC's "rpc error: code = ... desc = ..." for another), and several, told apart, in brackets
// (utilerrors.NewAggregate over the credentials tried).
type pullError []error

func (e pullError) Error() string {
	var msgs []string
	for _, err := range e {
		msg := err.Error()
		var re *remote.RuntimeError
		if errors.As(err, &re) {
			msg = re.Message
			if re.Code != "Unknown" {
				msg = fmt.Sprintf("rpc error: code = %s desc = %s", re.Code, re.Message)
			}
		}
		if !slices.Contains(msgs, msg) {
			msgs = append(msgs, msg)
		}
	}
	if len(msgs) == 1 {
		return msgs[0]
	}
	return "[" + strings.Join(msgs, ", ") + "]"
}

func (e pullError) Unwrap() []error { return e }
