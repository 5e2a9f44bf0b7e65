package provider

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

var errImage = errors.New("image not available")

// ensureImage makes the container's image present on the host as its pull policy says,
// with the kubelet's events (Pulling, Pulled, Failed, BackOff) and waiting reasons
// (ErrImagePull, ImagePullBackOff, ErrImageNeverPull). An image on the host serves the pod only
// if the pod may use it (pullrecords.go); else it is pulled again with the pod's credentials.
// On failure it returns when to try again.
func (p *Provider) ensureImage(ctx context.Context, rec *podRecord, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandboxConfig, key string) (time.Duration, error) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	repo, repoErr := repository(c.Image)
	if c.ImagePullPolicy != corev1.PullAlways {
		st, err := p.cri.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
		if err != nil {
			return retryAfterError, fmt.Errorf("image status %q: %w", c.Image, err)
		}
		if img := st.GetImage(); img != nil {
			mayUse, err := p.pulls.mayUse(ctx, c.Image, repo, img.GetId(), func() []RegistryCredential {
				creds, _ := p.secretCredentials(ctx, pod, repo)
				return creds
			})
			if err != nil {
				log.G(ctx).WithError(err).WithField("image", c.Image).Warn("cannot tell who may use the image on the host: pulling it again with the pod's credentials")
			}
			if mayUse {
				p.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine and can be accessed by the pod", c.Image)
				return 0, nil
			}
		}
		if c.ImagePullPolicy == corev1.PullNever {
			// The kubelet's two events: the image manager's, then the container's failure.
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			if rec.waiting[c.Name].Reason != "ErrImageNeverPull" {
				p.recorder.Event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", msg)
			}
			p.setWaiting(rec, pod, c.Name, "ErrImageNeverPull", msg, corev1.EventTypeWarning, "Failed", "Error: ErrImageNeverPull")
			return 30 * time.Second, errImage
		}
	}
	pullKey := key + "/pull"
	if wait := p.backoff.waitLast(pullKey, time.Now()); wait > 0 {
		// As the kubelet's: the event without the last error, the status with it.
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		status := msg
		if last := rec.pullErrors[c.Name]; last != "" {
			status += ": ErrImagePull: " + last
		}
		if rec.waiting[c.Name].Reason != "ImagePullBackOff" {
			p.recorder.Event(pod, corev1.EventTypeNormal, "BackOff", msg)
		}
		p.setWaiting(rec, pod, c.Name, "ImagePullBackOff", status, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
		return wait, errImage
	}
	var creds []RegistryCredential
	credErr := repoErr
	if repoErr == nil {
		creds, credErr = p.pullCredentials(ctx, pod, repo)
	}
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := time.Now()
	if err := p.pulls.begin(ctx, c.Image); err != nil {
		log.G(ctx).WithError(err).WithField("image", c.Image).Warn("cannot record the pull on the host")
	}
	ref, used, err := p.pull(ctx, spec, sb, creds)
	// The pull's end is recorded even when the pod went away meanwhile: an intent left on the
	// host would make every later pod of the image pull it again, after a restart.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	if rerr := p.pulls.done(rctx, c.Image, repo, ref, used); rerr != nil {
		log.G(ctx).WithError(rerr).WithField("image", c.Image).Warn("cannot record the pull on the host")
	}
	cancel()
	if err != nil {
		if credErr != nil {
			err = fmt.Errorf("%w (%v)", err, credErr)
		}
		p.backoff.next(pullKey, time.Now())
		p.recorder.Event(pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		if rec.pullErrors == nil {
			rec.pullErrors = map[string]string{}
		}
		rec.pullErrors[c.Name] = err.Error()
		p.setWaiting(rec, pod, c.Name, "ErrImagePull", err.Error(), corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		return p.backoff.delay(pullKey), fmt.Errorf("pull %q: %w", c.Image, err)
	}
	delete(rec.pullErrors, c.Name)
	took := time.Since(start).Truncate(time.Millisecond)
	// The kubelet's message; its pulls may wait for one another, Satellite's do not.
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting). Image size: %d bytes.",
		c.Image, took, took, p.imageSize(ctx, ref))
	return 0, nil
}

// imageSize is the size of the image with that ID on the host, 0 when it cannot be read.
func (p *Provider) imageSize(ctx context.Context, id string) uint64 {
	st, err := p.cri.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: id}})
	if err != nil {
		log.G(ctx).WithError(err).WithField("image", id).Debug("cannot read the pulled image's size")
		return 0
	}
	return st.GetImage().GetSize()
}

// pull pulls the image with each credential in turn until one works, as the kubelet does
// (kuberuntime's pullImage), and without credentials when there are none. It returns the
// image's ID and the credential that pulled it (nil: none).
func (p *Provider) pull(ctx context.Context, spec *runtimeapi.ImageSpec, sb *runtimeapi.PodSandboxConfig, creds []RegistryCredential) (string, *RegistryCredential, error) {
	if len(creds) == 0 {
		resp, err := p.cri.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, SandboxConfig: sb})
		if err != nil {
			return "", nil, pullError{err}
		}
		return resp.GetImageRef(), nil, nil
	}
	var errs pullError
	for i, cred := range creds {
		auth := &runtimeapi.AuthConfig{Username: cred.Username, Password: cred.Password}
		resp, err := p.cri.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, Auth: auth, SandboxConfig: sb})
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

// pullCredentials are the credentials to try for a repository: those of the pod's image pull
// secrets whose registry matches, then those of a registry credential provider (ECR). The
// error is why some could not be had, to show if the pull fails.
func (p *Provider) pullCredentials(ctx context.Context, pod *corev1.Pod, repo string) ([]RegistryCredential, error) {
	creds, err := p.secretCredentials(ctx, pod, repo)
	if p.cfg.Registries == nil {
		return creds, err
	}
	more, perr := p.cfg.Registries.Credentials(ctx, repo)
	return append(creds, more...), errors.Join(err, perr)
}

// secretCredentials are the credentials of the pod's image pull secrets for a repository. A
// pull secret that cannot be read gets the kubelet's event FailedToRetrieveImagePullSecret
// and is left out.
func (p *Provider) secretCredentials(ctx context.Context, pod *corev1.Pod, repo string) ([]RegistryCredential, error) {
	var secrets []*corev1.Secret
	var failed []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		s, err := p.getSecret(pod.Namespace, ref.Name)
		if err != nil {
			log.G(ctx).WithError(err).WithField("secret", ref.Name).Warn("unable to retrieve pull secret, the image pull may not succeed")
			failed = append(failed, ref.Name)
			continue
		}
		secrets = append(secrets, s)
	}
	if len(failed) > 0 {
		p.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(failed, ", "))
	}
	ring, err := newKeyring(secrets)
	if err != nil {
		return nil, err
	}
	return ring.lookup(repo), nil
}

func (p *Provider) getSecret(ns, name string) (*corev1.Secret, error) {
	if p.api.Secrets == nil {
		return nil, fmt.Errorf("couldn't get secret %v/%v, no kubeClient defined", ns, name)
	}
	return p.api.Secrets.Secrets(ns).Get(name)
}
