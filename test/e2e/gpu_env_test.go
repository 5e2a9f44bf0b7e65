package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// gpuEnvListen is the kubelet API of the env-mode lab's Satellite.
const gpuEnvListen = "10.213.0.1:10363"

// recordingRunc is the "nvidia" runtime's runc: for each container it creates (the sandbox's
// pause container among them) it appends a line to the record saying what the OCI spec gives
// it: the container's type and names, which containerd puts in the spec's annotations, and
// NVIDIA_VISIBLE_DEVICES from the process's env, as nvidia-container-runtime reads it. Then it
// runs the real runc with the same arguments. %[1]s is the record, %[2]s the real runc.
const recordingRunc = `#!/bin/sh
bundle=
prev=
for a in "$@"; do
	[ "$prev" = --bundle ] && bundle=$a
	prev=$a
done
if [ -n "$bundle" ]; then
	spec=$(cat "$bundle/config.json")
	field() { printf '%%s' "$spec" | grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | sed 's/^.*:"//; s/"$//'; }
	visible=$(printf '%%s' "$spec" | grep -o '"NVIDIA_VISIBLE_DEVICES=[^"]*"' | tail -n 1 | sed 's/^"NVIDIA_VISIBLE_DEVICES=//; s/"$//')
	echo "type=$(field io.kubernetes.cri.container-type) pod=$(field io.kubernetes.cri.sandbox-name) container=$(field io.kubernetes.cri.container-name) visible=${visible:-unset}" >>%[1]s
fi
exec %[2]s "$@"
`

// With --gpu-mode env, devices go by NVIDIA_VISIBLE_DEVICES to the NVIDIA runtime, as on a host
// where `nvidia-ctk runtime configure --runtime=containerd` added the runtime "nvidia": here its
// runc records what each container it creates is given. Two pods asking for one GPU each see
// different UUIDs of the host's GPUs, and their sandboxes and containers ran under "nvidia"
// with those UUIDs; a pod without GPUs sees NVIDIA_VISIBLE_DEVICES=void under containerd's
// default runtime; a pod whose runtimeClassName names a RuntimeClass with the handler "nvidia"
// runs there too, with void. Then Satellite starts again with the default --gpu-mode=auto,
// which finds containerd's CDI off (env), and a --gpu-runtime-handler containerd lacks: a GPU
// pod gets no sandbox, and a FailedCreatePodSandBox event that names the handler and the flag.
func TestIntegrationGPUEnvMode(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	suffix := ns[len(ns)-6:]
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc, for the lab's recording runtime: %v", err)
	}
	var record string
	l := newGPULabWith(t, e, "satellite-gpuenv-"+suffix, false, func(l *gpuLab) string {
		record = filepath.Join(l.dir, "nvidia-runtime.log")
		l.write("bin/nvidia-runc", fmt.Sprintf(recordingRunc, record, runc), 0o755)
		return fmt.Sprintf(`[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia]
  runtime_type = "io.containerd.runc.v2"
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia.options]
  BinaryName = "%[1]s/bin/nvidia-runc"
  Root = "%[1]s/runc-nvidia"
`, l.dir)
	})
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(record)
			t.Logf("the nvidia runtime's record:\n%s", b)
		}
	})
	// The rule is in hack/dev/satellite-rbac.yaml, which an environment set up before it lacks.
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "satellite",
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "node.k8s.io", Resource: "runtimeclasses", Verb: "get"}}}
	if r, err := e.client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{}); err != nil || !r.Status.Allowed {
		t.Fatalf("Satellite's user may not get RuntimeClasses (error %v): kubectl apply -f hack/dev/satellite-rbac.yaml, as hack/dev-up.sh does", err)
	}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "satellite-e2e-nvidia-" + suffix}, Handler: "nvidia"}
	if _, err := e.client.NodeV1().RuntimeClasses().Create(context.Background(), rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.client.NodeV1().RuntimeClasses().Delete(context.Background(), rc.Name, metav1.DeleteOptions{})
	})

	l.args = []string{"--listen-address", gpuEnvListen, "--gpu-mode", "env"}
	l.startSatellite()
	start := time.Now()
	l.waitGPUNode()
	t.Logf("node Ready with GPUs %v after start", time.Since(start).Round(100*time.Millisecond))

	tg := target{node: l.node, taints: []string{"virtual-kubelet.io/provider=satellite:NoSchedule"}}
	pod := func(name string, gpus int64, class string) *corev1.Pod {
		p := tg.pod(name, corev1.RestartPolicyNever, `echo "visible=$NVIDIA_VISIBLE_DEVICES"; exec sleep 3600`)
		if gpus > 0 {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": *resource.NewQuantity(gpus, resource.DecimalSI)}
		}
		if class != "" {
			p.Spec.RuntimeClassName = &class
		}
		return p
	}
	start = time.Now()
	for _, p := range []*corev1.Pod{pod("gpu-a", 1, ""), pod("gpu-b", 1, ""), pod("plain", 0, ""), pod("classy", 0, rc.Name)} {
		e.createPod(t, ns, p)
	}
	visible := map[string]string{}
	for _, name := range []string{"gpu-a", "gpu-b", "plain", "classy"} {
		visible[name] = l.visibleDevices(ns, name)
	}
	t.Logf("running %v after creation, NVIDIA_VISIBLE_DEVICES: %v", time.Since(start).Round(100*time.Millisecond), visible)
	uuids := regexp.MustCompile(`GPU-[0-9a-f-]+`).FindAllString(gpuSMIOutput, -1)
	a, b := visible["gpu-a"], visible["gpu-b"]
	if !slices.Contains(uuids, a) || !slices.Contains(uuids, b) || a == b {
		t.Errorf("gpu-a sees %q, gpu-b %q: want two different UUIDs of %q", a, b, uuids)
	}
	for _, name := range []string{"plain", "classy"} {
		if visible[name] != "void" {
			t.Errorf("%s sees NVIDIA_VISIBLE_DEVICES=%q, want void", name, visible[name])
		}
	}

	// The sandboxes' handlers, as containerd has them, and what the "nvidia" runtime was given.
	handlers := l.sandboxHandlers()
	for name, want := range map[string]string{"gpu-a": "nvidia", "gpu-b": "nvidia", "classy": "nvidia", "plain": ""} {
		if got, ok := handlers[name]; !ok || got != want {
			t.Errorf("%s's sandbox has runtime handler %q (found: %v), want %q", name, got, ok, want)
		}
	}
	lines := l.recorded(record)
	for _, name := range []string{"gpu-a", "gpu-b", "classy"} {
		for _, want := range []string{
			"type=sandbox pod=" + name + " container= visible=unset",
			"type=container pod=" + name + " container=main visible=" + visible[name],
		} {
			if !slices.Contains(lines, want) {
				t.Errorf("the nvidia runtime recorded no %q", want)
			}
		}
	}
	for _, line := range lines {
		if strings.Contains(line, " pod=plain ") {
			t.Errorf("the nvidia runtime created a container of plain: %q", line)
		}
	}
	for _, name := range []string{"gpu-a", "gpu-b", "plain", "classy"} {
		e.deletePod(t, ns, name)
	}
	l.assertHostClean()

	// auto on a containerd without CDI is env, and the GPU runtime handler is one it lacks.
	l.stopSatellite()
	l.args = []string{"--listen-address", gpuEnvListen, "--gpu-runtime-handler", "nvidia-legacy"}
	l.startSatellite()
	l.waitGPUNode()
	e.createPod(t, ns, pod("gpu-x", 1, ""))
	ev := e.waitEvent(t, ns, "gpu-x", "FailedCreatePodSandBox",
		`Failed to create pod sandbox: the host's containerd has no runtime handler "nvidia-legacy", which --gpu-runtime-handler names for pods that ask for nvidia.com/gpu (its runtimes: nvidia, runc)`,
		60*time.Second)
	t.Logf("gpu-x: %s", describeEvent(ev))
	if p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), "gpu-x", metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodPending {
		t.Errorf("gpu-x: %v, error %v; want Pending", p.Status.Phase, err)
	}
	e.deletePod(t, ns, "gpu-x")
	l.assertHostClean()
}

// waitGPUNode waits for the lab's node to be Ready with the two GPUs.
func (l *gpuLab) waitGPUNode() {
	l.t.Helper()
	l.e.waitFor(l.t, 90*time.Second, "node "+l.node+" Ready with 2 nvidia.com/gpu", func(ctx context.Context) (bool, error) {
		n, err := l.e.client.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		q := n.Status.Allocatable["nvidia.com/gpu"]
		return q.Value() == 2 && nodeIsReady(n), nil
	})
}

var visibleLine = regexp.MustCompile(`(?m)^visible=(.*)$`)

// visibleDevices waits for the pod to run and returns the NVIDIA_VISIBLE_DEVICES it printed.
func (l *gpuLab) visibleDevices(ns, name string) string {
	l.t.Helper()
	l.e.waitPod(l.t, ns, name, 90*time.Second, "running", running)
	var out string
	l.e.waitFor(l.t, 30*time.Second, "log of "+name, func(ctx context.Context) (bool, error) {
		var err error
		out, err = l.e.kubectl(ctx, l.t, "", "logs", "-n", ns, name)
		return visibleLine.MatchString(out), err
	})
	return visibleLine.FindStringSubmatch(out)[1]
}

// sandboxHandlers are the runtime handlers of the lab's sandboxes by pod name.
func (l *gpuLab) sandboxHandlers() map[string]string {
	l.t.Helper()
	rt, done, err := l.runtime()
	if err != nil {
		l.t.Fatal(err)
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		l.t.Fatal(err)
	}
	handlers := map[string]string{}
	for _, s := range sbs.Items {
		handlers[s.GetMetadata().GetName()] = s.RuntimeHandler
	}
	return handlers
}

// recorded are the lines of the recording runtime's record.
func (l *gpuLab) recorded(record string) []string {
	l.t.Helper()
	b, err := os.ReadFile(record)
	if err != nil {
		l.t.Fatalf("the nvidia runtime's record: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
