package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var errImage = errors.New("image not available")

// ensureImage makes the container's image present on the host as its pull policy says,
// with the kubelet's events (Pulling, Pulled, Failed, BackOff) and waiting reasons
// (ErrImagePull, ImagePullBackOff, ErrImageNeverPull). On failure it returns when to try
// again.
func (p *Provider) ensureImage(ctx context.Context, rec *podRecord, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandboxConfig, key string) (time.Duration, error) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	if c.ImagePullPolicy != corev1.PullAlways {
		st, err := p.cri.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
		if err != nil {
			return retryAfterError, fmt.Errorf("image status %q: %w", c.Image, err)
		}
		if st.GetImage() != nil {
			return 0, nil
		}
		if c.ImagePullPolicy == corev1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			p.setWaiting(rec, pod, c.Name, "ErrImageNeverPull", msg, corev1.EventTypeWarning, "ErrImageNeverPull", msg)
			return 30 * time.Second, errImage
		}
	}
	pullKey := key + "/pull"
	if wait := p.backoff.waitLast(pullKey, time.Now()); wait > 0 {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		p.setWaiting(rec, pod, c.Name, "ImagePullBackOff", msg, corev1.EventTypeNormal, "BackOff", msg)
		return wait, errImage
	}
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := time.Now()
	if _, err := p.cri.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, SandboxConfig: sb}); err != nil {
		p.backoff.next(pullKey, time.Now())
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		p.recorder.Event(pod, corev1.EventTypeWarning, "Failed", msg)
		p.setWaiting(rec, pod, c.Name, "ErrImagePull", msg, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		return p.backoff.delay(pullKey), fmt.Errorf("pull %q: %w", c.Image, err)
	}
	p.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond))
	return 0, nil
}
