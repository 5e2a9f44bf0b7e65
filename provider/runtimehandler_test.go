package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/satellite-vk/satellite/remote"
)

// In env mode a pod asking for GPUs, in any container, runs with the GPU handler; in CDI mode,
// without GPUs or with GPUs off, with containerd's default.
func TestGPURuntimeHandler(t *testing.T) {
	t.Parallel()
	gpu, _ := gpuPod("gpu", 1)
	none, _ := gpuPod("none", 0)
	initGPU, _ := gpuPod("init", 0)
	initGPU.Spec.InitContainers = []corev1.Container{{Name: "warm", Resources: gpu.Spec.Containers[0].Resources}}
	sidecar, _ := gpuPod("sidecar", 2)
	sidecar.Spec.Containers = append([]corev1.Container{{Name: "log"}}, sidecar.Spec.Containers...)
	tests := []struct {
		pod  *corev1.Pod
		mode GPUMode
		want string
	}{
		{gpu, GPUModeEnv, "nvidia"},
		{initGPU, GPUModeEnv, "nvidia"},
		{sidecar, GPUModeEnv, "nvidia"},
		{none, GPUModeEnv, ""},
		{gpu, GPUModeCDI, ""},
		{gpu, GPUModeOff, ""},
	}
	for _, tt := range tests {
		if got := gpuRuntimeHandler(tt.pod, tt.mode, "nvidia"); got != tt.want {
			t.Errorf("%s in %s mode: handler %q, want %q", tt.pod.Name, tt.mode, got, tt.want)
		}
	}
}

// sandboxCRI is a containerd with the runtimes it is configured with: RunPodSandbox refuses
// a handler it does not have as containerd does, and records the handler of each sandbox.
type sandboxCRI struct {
	Runtime
	runtimes []string
	mu       sync.Mutex
	handlers []string
}

func (f *sandboxCRI) RunPodSandbox(_ context.Context, r *runtimeapi.RunPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.RunPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := r.RuntimeHandler
	if h == "" {
		h = "runc"
	}
	if !slices.Contains(f.runtimes, h) {
		return nil, fmt.Errorf("unable to get OCI runtime for sandbox \"0123\": no runtime for %q is configured", h)
	}
	f.handlers = append(f.handlers, r.RuntimeHandler)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: fmt.Sprint("sb-", len(f.handlers))}, nil
}

func (f *sandboxCRI) Status(_ context.Context, r *runtimeapi.StatusRequest, _ ...grpc.CallOption) (*runtimeapi.StatusResponse, error) {
	if !r.Verbose {
		return &runtimeapi.StatusResponse{}, nil
	}
	var cfg criConfig
	cfg.Containerd.Runtimes = map[string]json.RawMessage{}
	for _, name := range f.runtimes {
		cfg.Containerd.Runtimes[name] = json.RawMessage(`{"runtimeType":"io.containerd.runc.v2"}`)
	}
	b, err := json.Marshal(cfg)
	return &runtimeapi.StatusResponse{Info: map[string]string{"config": string(b)}}, err
}

// sandboxHost has a resolv.conf and makes directories.
type sandboxHost struct{ Host }

func (sandboxHost) MkdirAll(context.Context, string, os.FileMode) error { return nil }
func (sandboxHost) Open(context.Context, string) (remote.File, error) {
	return &memFile{data: []byte("nameserver 192.0.2.53\n")}, nil
}

// A sandbox runs with its pod's RuntimeClass's handler when it names one, else with the GPU
// handler in env mode when it asks for GPUs, else with containerd's default. A handler the
// host's containerd lacks, or a RuntimeClass that does not exist, leaves the pod without a
// sandbox and with a FailedCreatePodSandBox event that says what to set.
func TestStartSandboxRuntimeHandler(t *testing.T) {
	t.Parallel()
	kata := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata-qemu"}
	gvisor := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}
	withClass := func(pod *corev1.Pod, class string) *corev1.Pod {
		pod.Spec.RuntimeClassName = ptr.To(class)
		return pod
	}
	gpu := func() *corev1.Pod { p, _ := gpuPod("gpu", 1); return p }
	plain := func() *corev1.Pod { p, _ := gpuPod("plain", 0); return p }
	tests := []struct {
		name       string
		mode       GPUMode
		facts      GPUMode // what auto found
		gpuHandler string
		pod        *corev1.Pod
		want       string // the sandbox's handler, or the event's message when it failed
	}{
		{"env: GPU pod", GPUModeEnv, "", "nvidia", gpu(), "nvidia"},
		{"env: pod without GPU", GPUModeEnv, "", "nvidia", plain(), ""},
		{"env, default runtime for GPUs", GPUModeEnv, "", "", gpu(), ""},
		{"cdi: GPU pod", GPUModeCDI, "", "nvidia", gpu(), ""},
		{"auto found env", GPUModeAuto, GPUModeEnv, "nvidia", gpu(), "nvidia"},
		{"auto found cdi", GPUModeAuto, GPUModeCDI, "nvidia", gpu(), ""},
		{"RuntimeClass", GPUModeOff, "", "nvidia", withClass(plain(), "kata"), "kata-qemu"},
		{"RuntimeClass wins over the GPU handler", GPUModeEnv, "", "nvidia", withClass(gpu(), "kata"), "kata-qemu"},
		{"empty runtimeClassName", GPUModeEnv, "", "nvidia", withClass(gpu(), ""), "nvidia"},
		{"GPU handler missing on the host", GPUModeEnv, "", "nvidia-legacy", gpu(),
			`Warning FailedCreatePodSandBox Failed to create pod sandbox: the host's containerd has no runtime handler "nvidia-legacy", ` +
				`which --gpu-runtime-handler names for pods that ask for nvidia.com/gpu (its runtimes: kata-qemu, nvidia, runc); ` +
				"on the host run `sudo nvidia-ctk runtime configure --runtime=containerd` and restart containerd, " +
				`or set --gpu-runtime-handler (chart: gpu.runtimeHandler) to one of its runtimes, or to "" for its default one: ` +
				`unable to get OCI runtime for sandbox "0123": no runtime for "nvidia-legacy" is configured`},
		{"RuntimeClass handler missing on the host", GPUModeOff, "", "nvidia", withClass(plain(), "gvisor"),
			`Warning FailedCreatePodSandBox Failed to create pod sandbox: the host's containerd has no runtime handler "runsc", which RuntimeClass "gvisor" names ` +
				`(its runtimes: kata-qemu, nvidia, runc): unable to get OCI runtime for sandbox "0123": no runtime for "runsc" is configured`},
		{"no such RuntimeClass", GPUModeOff, "", "nvidia", withClass(plain(), "wasm"),
			`Warning FailedCreatePodSandBox Failed to create pod sandbox: runtimeclasses.node.k8s.io "wasm" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cri := &sandboxCRI{runtimes: []string{"runc", "nvidia", "kata-qemu"}}
			rec := record.NewFakeRecorder(10)
			p := New(Config{NodeName: "n", GPUMode: tt.mode, GPURuntimeHandler: tt.gpuHandler,
				RuntimeClasses: fake.NewClientset([]runtime.Object{kata, gvisor}...).NodeV1().RuntimeClasses()},
				sandboxHost{}, cri, rec, nil)
			p.node.facts = &hostFacts{GPUs: fourGPUs(), GPUMode: tt.facts}
			err := p.startSandbox(context.Background(), tt.pod, &observation{})
			var got string
			if err != nil {
				var failed []string
				for _, ev := range events(rec) {
					if strings.Contains(ev, "FailedCreatePodSandBox") {
						failed = append(failed, ev)
					}
				}
				got = strings.Join(failed, "\n")
			} else {
				got = cri.handlers[0]
			}
			if got != tt.want {
				t.Errorf("got %q (error %v)\nwant %q", got, err, tt.want)
			}
		})
	}
}

// A pod with a runtimeClassName cannot start where Satellite has no RuntimeClass getter.
func TestRuntimeHandlerWithoutAPI(t *testing.T) {
	t.Parallel()
	p := New(Config{NodeName: "n"}, nil, nil, nil, nil)
	pod := samplePod()
	pod.Spec.RuntimeClassName = ptr.To("kata")
	if _, err := p.runtimeHandler(context.Background(), pod); err == nil || !strings.Contains(err.Error(), "failed to lookup RuntimeClass kata") {
		t.Errorf("error %v, want failed to lookup RuntimeClass kata", err)
	}
}
