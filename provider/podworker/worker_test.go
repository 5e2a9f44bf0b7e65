package podworker

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/images"
	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/provider/logs"
	"github.com/satellite-vk/satellite/provider/volumes"
)

// noSecrets is a Kubernetes API without Secrets.
type noSecrets struct{}

func (noSecrets) Secret(context.Context, string, string) (*corev1.Secret, error) {
	return nil, errors.New("no secrets here")
}

// newTestWorker is a Worker over the in-memory host and runtime, with the managers the
// provider hands it; devices is the device manager (nil: one with GPUs off).
func newTestWorker(cfg Config, host *fake.Host, cri *fake.Runtime, rec record.EventRecorder, devices *gpu.Manager) *Worker {
	if cfg.LogRoot == "" {
		cfg.LogRoot = "/var/log/pods"
	}
	if cfg.PodDir == "" {
		cfg.PodDir = "/var/lib/satellite/pods"
	}
	if cfg.PodsSynced == nil {
		cfg.PodsSynced = func() bool { return true }
	}
	if devices == nil {
		devices = gpu.New(gpu.Config{}, cri, host)
	}
	none := func() corev1.ResourceList { return nil }
	return New(cfg, Deps{Host: host, Runtime: cri, Recorder: rec, GPU: devices, Allocatable: none, Publish: func(*corev1.Pod) {},
		Images:  images.New(images.Config{Runtime: cri, Host: host, Records: "/var/lib/satellite/image-pulls.json", Secrets: noSecrets{}, Recorder: rec}),
		Volumes: volumes.New(volumes.Config{Host: host, PodDir: cfg.PodDir, Recorder: rec, Allocatable: none}),
		Logs:    logs.New(logs.Config{}, host, cri),
	})
}

// A pod deleted before Satellite took it in (a restart) is taken in to be deleted, so its
// containers on the host are stopped rather than left to orphan collection.
func TestDeleteNotYetTakenIn(t *testing.T) {
	w := newTestWorker(Config{NodeName: "n"}, fake.NewHost(), fake.NewRuntime(), record.NewFakeRecorder(10), nil)
	grace := int64(7)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u-1", DeletionGracePeriodSeconds: &grace}}
	w.Delete(pod)
	rec, got, deleting, g := w.store.record("u-1")
	if rec == nil || got.Name != "p" || !deleting || g != 7 {
		t.Errorf("store: rec=%v pod=%v deleting=%v grace=%d, want the pod marked deleting with grace 7", rec != nil, got, deleting, g)
	}
}
