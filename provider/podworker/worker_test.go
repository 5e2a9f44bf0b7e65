package podworker

import (
	"context"
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/images"
	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
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

// A sandbox the runtime stops but will not remove (containerd after a crash, "failed to
// delete containerd container") does not hold the pod: killPod finishes, as the kubelet
// finishes a pod once its sandboxes are stopped, and the sandbox stays for the collector.
func TestKillPodLeavesUnremovableSandbox(t *testing.T) {
	t.Parallel()
	cri := fake.NewRuntime()
	cri.Hooks.RemovePodSandbox = func(context.Context, *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
		return nil, errors.New("failed to delete containerd container")
	}
	host := fake.NewHost()
	host.Script(fake.Command{Prefix: "[ -e '/var/lib/satellite/pods/"}) // the pod's volumes, removed
	w := newTestWorker(Config{NodeName: "n"}, host, cri, record.NewFakeRecorder(100), nil)
	pod := fake.Pod(corev1.RestartPolicyAlways, nil, "main")
	pod.Name, pod.Namespace, pod.UID = "p", "ns", "u-1"
	id := cri.AddSandbox(&runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID)},
		Labels:   map[string]string{kuberuntime.LabelPodUID: string(pod.UID), kuberuntime.LabelNode: "n"},
	})
	w.store.put(pod)
	rec, _, _, _ := w.store.record(pod.UID)
	if _, err := w.killPod(context.Background(), rec, pod, 1); err != nil {
		t.Fatalf("killPod with an unremovable sandbox: %v, want the pod finished", err)
	}
	if got := cri.CallsOf("StopPodSandbox"); len(got) != 1 || got[0] != id {
		t.Errorf("StopPodSandbox calls %v, want the sandbox stopped", got)
	}
	st, err := cri.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil || st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("the sandbox after killPod: %v, %v; want it left, stopped", st.GetStatus().GetState(), err)
	}
}
