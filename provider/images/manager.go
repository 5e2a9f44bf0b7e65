package images

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// Runtime is what the manager needs of the host's CRI image service.
type Runtime interface {
	ImageStatus(ctx context.Context, in *runtimeapi.ImageStatusRequest, opts ...grpc.CallOption) (*runtimeapi.ImageStatusResponse, error)
	PullImage(ctx context.Context, in *runtimeapi.PullImageRequest, opts ...grpc.CallOption) (*runtimeapi.PullImageResponse, error)
}

// Config is what a Manager is made of.
type Config struct {
	Runtime Runtime
	// Host runs the commands that read and write the pull records file, Records.
	Host    Commands
	Records string
	// Secrets reads image pull secrets; Registries is a credential provider tried after them
	// (nil: none).
	Secrets    SecretGetter
	Registries CredentialProvider
	Recorder   record.EventRecorder
	// Clock is the image-pull back-off's (nil: the real one).
	Clock clock.Clock
}

// Manager makes containers' images present on the host, as the kubelet's image manager does:
// with the pull policy, the pod's credentials, the pull records and an image-pull back-off
// per container. It keeps each pod's last failed pulls until Forget.
type Manager struct {
	cri        Runtime
	records    *pullRecords
	secrets    SecretGetter
	registries CredentialProvider
	recorder   record.EventRecorder
	failures   *failures
}

// New makes a Manager.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Manager{
		cri:        cfg.Runtime,
		records:    newPullRecords(hostFile{host: cfg.Host, path: cfg.Records}),
		secrets:    cfg.Secrets,
		registries: cfg.Registries,
		recorder:   cfg.Recorder,
		failures:   newFailures(cfg.Clock),
	}
}

var errNotAvailable = errors.New("image not available")

// WaitingError is a container that waits for its image, with the kubelet's waiting reason
// (ErrImagePull, ImagePullBackOff, ErrImageNeverPull) and message for its status.
type WaitingError struct {
	Reason, Message string
	Err             error
}

func (e *WaitingError) Error() string { return e.Err.Error() }
func (e *WaitingError) Unwrap() error { return e.Err }

// Ensure makes the container's image present on the host as its pull policy says, with the
// kubelet's events (Pulling, Pulled, Failed, BackOff). An image on the host serves the pod
// only if the pod may use it (pullrecords.go); else it is pulled again with the pod's
// credentials. waiting is the container's waiting reason so far: an event already given for
// it is not repeated.
//
// On failure it returns when to try again and an error: a *WaitingError for the container's
// status, or, with a zero wait, the host's failure.
func (m *Manager) Ensure(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandboxConfig, waiting string) (time.Duration, error) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	repo, repoErr := repository(c.Image)
	if c.ImagePullPolicy != corev1.PullAlways {
		ok, err := m.present(ctx, pod, spec, repo)
		if err != nil {
			return 0, err
		}
		if ok {
			m.recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine and can be accessed by the pod", c.Image)
			return 0, nil
		}
		if c.ImagePullPolicy == corev1.PullNever {
			return 30 * time.Second, m.neverPull(pod, c, waiting)
		}
	}
	if wait, lastErr := m.failures.backingOff(pod.UID, c.Name); wait > 0 {
		return wait, m.backingOff(pod, c, waiting, lastErr)
	}
	return m.pullFor(ctx, pod, c, spec, sb, repo, repoErr)
}

// Forget drops what the manager keeps of a pod that is gone: its containers' back-off and
// last pull errors.
func (m *Manager) Forget(uid types.UID) { m.failures.forget(uid) }
