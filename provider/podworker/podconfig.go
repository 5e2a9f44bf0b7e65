package podworker

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// What the pure translation of package kuberuntime needs from the world, read here: the
// host's resolv.conf, the image's user, the node's allocatable; and the events it asks for.

const (
	hostResolvConf = "/etc/resolv.conf"
	// resolvConfMaxAge is how long the host's resolv.conf is reused for new sandboxes.
	resolvConfMaxAge = 30 * time.Second
)

// fileOpener opens a file on the host.
type fileOpener interface {
	Open(ctx context.Context, path string) (remote.File, error)
}

// sandboxDNS forms sandboxes' DNS configurations from the host's resolv.conf, which it
// caches for a short while so that a burst of new pods costs one read of it, and records the
// kubelet's warnings on the pod and on the node.
type sandboxDNS struct {
	files    fileOpener
	recorder record.EventRecorder
	nodeName string
	// clusterDNS is the cluster's DNS as pods on the host reach it now (none while they
	// cannot); nil: none.
	clusterDNS func() kuberuntime.ClusterDNS

	mu     sync.Mutex
	data   []byte
	readAt time.Time
}

// config is the DNS configuration of the pod's sandbox.
func (d *sandboxDNS) config(ctx context.Context, pod *corev1.Pod) (*runtimeapi.DNSConfig, error) {
	host := &runtimeapi.DNSConfig{}
	if pod.Spec.DNSPolicy != corev1.DNSNone {
		data, err := d.hostResolvConf(ctx)
		if err != nil {
			return nil, err
		}
		host = kuberuntime.ParseResolvConf(data)
	}
	cfg, warnings := kuberuntime.PodDNSConfig(pod, host, d.cluster())
	for _, w := range warnings {
		d.recorder.Event(pod, corev1.EventTypeWarning, w.Reason, w.Message)
		if w.NodeMessage != "" {
			ref := kubecontainer.NodeRef(d.nodeName)
			d.recorder.Event(ref, corev1.EventTypeWarning, w.Reason, w.NodeMessage)
		}
	}
	return cfg, nil
}

func (d *sandboxDNS) cluster() kuberuntime.ClusterDNS {
	if d.clusterDNS == nil {
		return kuberuntime.ClusterDNS{}
	}
	return d.clusterDNS()
}

func (d *sandboxDNS) hostResolvConf(ctx context.Context) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.data != nil && time.Since(d.readAt) < resolvConfMaxAge {
		return d.data, nil
	}
	f, err := d.files.Open(ctx, hostResolvConf)
	if err != nil {
		return nil, fmt.Errorf("read the host's resolv.conf: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, 10<<20), 10<<20))
	if err != nil {
		return nil, fmt.Errorf("read the host's resolv.conf: %w", err)
	}
	d.data, d.readAt = data, time.Now()
	return data, nil
}

// imageStatuser is the runtime's image service as the runAsNonRoot check uses it.
type imageStatuser interface {
	ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest, opts ...grpc.CallOption) (*runtimeapi.ImageStatusResponse, error)
}

// checkRunAsNonRoot runs the kubelet's runAsNonRoot check, reading the image's user from the
// runtime only when the check needs it.
func checkRunAsNonRoot(ctx context.Context, images imageStatuser, pod *corev1.Pod, c *corev1.Container) error {
	var uid *int64
	var username string
	if kuberuntime.NeedsImageUser(pod, c) {
		resp, err := images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}})
		if err != nil {
			return fmt.Errorf("image status %q: %w", c.Image, err)
		}
		uid, username = kuberuntime.ImageUser(resp.GetImage())
	}
	return kuberuntime.VerifyRunAsNonRoot(pod, c, uid, username)
}
