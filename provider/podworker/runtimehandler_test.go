package podworker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
)

func fourGPUs() []gpu.Device {
	var g []gpu.Device
	for i := range 4 {
		g = append(g, gpu.Device{Index: i, UUID: fmt.Sprintf("GPU-%d", i), Name: "NVIDIA A10G", MemoryMiB: 23028, Driver: "550.54.15"})
	}
	return g
}

func gpuPod(name string, n int64) (*corev1.Pod, *corev1.Container) {
	pod := samplePod()
	pod.Name, pod.UID = name, types.UID("uid-"+name)
	c := &pod.Spec.Containers[0]
	if n > 0 {
		c.Resources.Limits = corev1.ResourceList{gpu.ResourceName: *resource.NewQuantity(n, resource.DecimalSI)}
	}
	return pod, c
}

// sandboxRuntime is a containerd with the runtimes it is configured with: RunPodSandbox
// refuses a handler it does not have as containerd does; the verbose Status gives its
// config (the runtimes, CDI on or off).
func sandboxRuntime(runtimes []string, cdi bool) *fake.Runtime {
	cri := fake.NewRuntime()
	cri.Hooks.RunPodSandbox = func(_ context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
		h := r.RuntimeHandler
		if h == "" {
			h = "runc"
		}
		if !slices.Contains(runtimes, h) {
			return nil, fmt.Errorf("unable to get OCI runtime for sandbox \"0123\": no runtime for %q is configured", h)
		}
		return nil, fake.Pass
	}
	cri.Hooks.Status = func(_ context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
		if !r.Verbose {
			return &runtimeapi.StatusResponse{}, nil
		}
		rts := map[string]json.RawMessage{}
		for _, name := range runtimes {
			rts[name] = json.RawMessage(`{"runtimeType":"io.containerd.runc.v2"}`)
		}
		b, err := json.Marshal(map[string]any{"enableCDI": cdi, "containerd": map[string]any{"runtimes": rts}})
		return &runtimeapi.StatusResponse{Info: map[string]string{"config": string(b)}}, err
	}
	return cri
}

// sandboxHost has a resolv.conf and a CDI spec for nvidia.com/gpu.
func sandboxHost() *fake.Host {
	host := fake.NewHost()
	host.SetFile(hostResolvConf, []byte("nameserver 192.0.2.53\n"), 0o644)
	host.Script(fake.Command{Prefix: "", Stdout: "/etc/cdi/nvidia.yaml\n"})
	return host
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
	gpuWanted := func() *corev1.Pod { p, _ := gpuPod("gpu", 1); return p }
	plain := func() *corev1.Pod { p, _ := gpuPod("plain", 0); return p }
	tests := []struct {
		name       string
		mode       gpu.Mode
		cdi        bool // the host's containerd has CDI on: what auto finds
		gpuHandler string
		pod        *corev1.Pod
		want       string // the sandbox's handler, or the event's message when it failed
	}{
		{"env: GPU pod", gpu.ModeEnv, false, "nvidia", gpuWanted(), "nvidia"},
		{"env: pod without GPU", gpu.ModeEnv, false, "nvidia", plain(), ""},
		{"env, default runtime for GPUs", gpu.ModeEnv, false, "", gpuWanted(), ""},
		{"cdi: GPU pod", gpu.ModeCDI, false, "nvidia", gpuWanted(), ""},
		{"auto found env", gpu.ModeAuto, false, "nvidia", gpuWanted(), "nvidia"},
		{"auto found cdi", gpu.ModeAuto, true, "nvidia", gpuWanted(), ""},
		{"RuntimeClass", gpu.ModeOff, false, "nvidia", withClass(plain(), "kata"), "kata-qemu"},
		{"RuntimeClass wins over the GPU handler", gpu.ModeEnv, false, "nvidia", withClass(gpuWanted(), "kata"), "kata-qemu"},
		{"empty runtimeClassName", gpu.ModeEnv, false, "nvidia", withClass(gpuWanted(), ""), "nvidia"},
		{"GPU handler missing on the host", gpu.ModeEnv, false, "nvidia-legacy", gpuWanted(),
			`Warning FailedCreatePodSandBox Failed to create pod sandbox: the host's containerd has no runtime handler "nvidia-legacy", ` +
				`which --gpu-runtime-handler names for pods that ask for nvidia.com/gpu (its runtimes: kata-qemu, nvidia, runc); ` +
				"on the host run `sudo nvidia-ctk runtime configure --runtime=containerd` and restart containerd, " +
				`or set --gpu-runtime-handler (chart: gpu.runtimeHandler) to one of its runtimes, or to "" for its default one: ` +
				`unable to get OCI runtime for sandbox "0123": no runtime for "nvidia-legacy" is configured`},
		{"RuntimeClass handler missing on the host", gpu.ModeOff, false, "nvidia", withClass(plain(), "gvisor"),
			`Warning FailedCreatePodSandBox Failed to create pod sandbox: the host's containerd has no runtime handler "runsc", which RuntimeClass "gvisor" names ` +
				`(its runtimes: kata-qemu, nvidia, runc): unable to get OCI runtime for sandbox "0123": no runtime for "runsc" is configured`},
		{"no such RuntimeClass", gpu.ModeOff, false, "nvidia", withClass(plain(), "wasm"),
			`Warning FailedCreatePodSandBox Failed to create pod sandbox: runtimeclasses.node.k8s.io "wasm" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cri := sandboxRuntime([]string{"runc", "nvidia", "kata-qemu"}, tt.cdi)
			rec := record.NewFakeRecorder(10)
			host := sandboxHost()
			devices := gpu.New(gpu.Config{Mode: tt.mode, RuntimeHandler: tt.gpuHandler,
				RuntimeClasses: k8sfake.NewClientset([]runtime.Object{kata, gvisor}...).NodeV1().RuntimeClasses(),
				NodeContainers: map[string]string{kuberuntime.LabelNode: "n"}}, cri, host)
			devices.Observe(context.Background(), gpu.Reading{Devices: fourGPUs()})
			p := newTestWorker(Config{NodeName: "n"}, host, cri, rec, devices)
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
				got = fake.Requests[runtimeapi.RunPodSandboxRequest](cri, "RunPodSandbox")[0].RuntimeHandler
			}
			if got != tt.want {
				t.Errorf("got %q (error %v)\nwant %q", got, err, tt.want)
			}
		})
	}
}
