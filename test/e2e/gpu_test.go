package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// gpuSMIOutput is what the fake nvidia-smi prints for Satellite's query: two A100s, in the
// format of the real driver.
const gpuSMIOutput = `0, GPU-68f6855b-e57c-6591-ce3b-3a6d9c409ac6, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
1, GPU-f7d0c1cb-95cd-a4d7-8269-68fc92d55bf2, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
`

// gpuCDISpec gives "GPU" n as a harmless character device at /dev/nvidia<n> and
// NVIDIA_GPU_INDEX=<n>, in the shape of the spec `nvidia-ctk cdi generate` writes.
const gpuCDISpec = `cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
      hostPath: /dev/null
    env:
    - NVIDIA_GPU_INDEX=0
- name: "1"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia1
      hostPath: /dev/zero
    env:
    - NVIDIA_GPU_INDEX=1
`

// gpuLab is a throwaway containerd 2 with CDI in the host's network namespace, a fake
// nvidia-smi that reports two GPUs, and a Satellite of its own for them.
type gpuLab struct {
	t      *testing.T
	e      *env
	dir    string
	socket string
	node   string
	ctrd   *throwawayContainerd
	sat    *exec.Cmd
	satLog string
	args   []string // Satellite's flags besides the lab's own
	env    []string // Satellite's environment besides the test's
	// eniNamed: the node's name comes from an ENI the flags in args name, not --node-name.
	eniNamed bool
}

const gpuListen = "10.213.0.1:10362"

// A node advertises the host's GPUs (nvidia.com/gpu and GPU feature discovery's labels) and
// each container gets devices of its own, through CDI, which the default --gpu-mode=auto finds
// on the lab's containerd: two pods asking for one GPU each run and see different devices; a
// third is left Pending by the scheduler; after Satellite is killed and started again, a new
// pod gets the device a deleted pod freed and not the one still held (allocations are read
// back from the host); nothing is left on the host.
func TestIntegrationGPU(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	l := newGPULab(t, e, "satellite-gpu-"+ns[len(ns)-6:])
	l.startSatellite()

	start := time.Now()
	var node *corev1.Node
	e.waitFor(t, 90*time.Second, "node "+l.node+" Ready with nvidia.com/gpu", func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		_, ok := n.Status.Allocatable["nvidia.com/gpu"]
		return ok && nodeIsReady(n), nil
	})
	t.Logf("node Ready with GPUs %v after start", time.Since(start).Round(100*time.Millisecond))
	for _, l := range []corev1.ResourceList{node.Status.Capacity, node.Status.Allocatable} {
		if q := l["nvidia.com/gpu"]; q.Value() != 2 {
			t.Errorf("nvidia.com/gpu = %s, want 2", q.String())
		}
	}
	for k, v := range map[string]string{"nvidia.com/gpu.count": "2", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
		"nvidia.com/gpu.memory": "81920", "nvidia.com/cuda.driver.major": "535", "nvidia.com/cuda.driver.minor": "104",
		"nvidia.com/cuda.driver.rev": "05"} {
		if node.Labels[k] != v {
			t.Errorf("node label %s = %q, want %q", k, node.Labels[k], v)
		}
	}

	tg := target{node: l.node, taints: []string{"virtual-kubelet.io/provider=satellite:NoSchedule"}}
	gpuPod := func(name string) *corev1.Pod {
		p := tg.pod(name, corev1.RestartPolicyNever, `ls /dev/nvidia*; echo "index=$NVIDIA_GPU_INDEX visible=$NVIDIA_VISIBLE_DEVICES"; exec sleep 3600`)
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
		return p
	}
	start = time.Now()
	e.createPod(t, ns, gpuPod("gpu-a"))
	e.createPod(t, ns, gpuPod("gpu-b"))
	a, b := l.gpuOf(ns, "gpu-a"), l.gpuOf(ns, "gpu-b")
	t.Logf("gpu-a has GPU %s, gpu-b GPU %s; both running %v after creation", a, b, time.Since(start).Round(100*time.Millisecond))
	if a == b {
		t.Fatalf("both pods have GPU %s", a)
	}

	e.createPod(t, ns, gpuPod("gpu-c"))
	c := e.waitPod(t, ns, "gpu-c", 30*time.Second, "unschedulable", func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true
			}
		}
		return false
	})
	if c.Spec.NodeName != "" || c.Status.Phase != corev1.PodPending {
		t.Errorf("gpu-c: node %q, phase %s; want Pending and unscheduled", c.Spec.NodeName, c.Status.Phase)
	}
	for _, cond := range c.Status.Conditions {
		if cond.Type == corev1.PodScheduled && !strings.Contains(cond.Message, "Insufficient nvidia.com/gpu") {
			t.Errorf("gpu-c PodScheduled message %q, want Insufficient nvidia.com/gpu", cond.Message)
		}
	}
	t.Logf("gpu-c Unschedulable: %s", podScheduledMessage(c))
	e.deletePod(t, ns, "gpu-c")

	// Satellite dies without a word and comes back: its memory of the allocations is gone.
	l.killSatellite()
	start = time.Now()
	l.startSatellite()
	// Wait until the new Satellite has taken the running pods back (its kubelet API lists
	// them). A pod deleted before that is removed from the API at once by virtual-kubelet
	// while its container runs on until the orphan collection a minute later, holding its
	// GPU: the next pod would wait for the device with UnexpectedAdmissionError.
	e.waitFor(t, 60*time.Second, "the restarted Satellite to adopt gpu-a and gpu-b", func(ctx context.Context) (bool, error) {
		out, err := e.kubectl(ctx, t, "", "get", "--raw", "/api/v1/nodes/"+l.node+"/proxy/runningpods/")
		return strings.Contains(out, `"gpu-a"`) && strings.Contains(out, `"gpu-b"`), err
	})
	t.Logf("restarted Satellite serves gpu-a and gpu-b %v after start", time.Since(start).Round(100*time.Millisecond))
	// Free the higher device: a restarted Satellite that forgot the held one would hand out
	// the lowest free device, which is the held one.
	held, freedPod, freed := a, "gpu-b", b
	if a > b {
		held, freedPod, freed = b, "gpu-a", a
	}
	start = time.Now()
	e.deletePod(t, ns, freedPod)
	t.Logf("%s deleted by the restarted Satellite in %v", freedPod, time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	e.createPod(t, ns, gpuPod("gpu-d"))
	d := l.gpuOf(ns, "gpu-d")
	t.Logf("gpu-d has GPU %s, running %v after creation", d, time.Since(start).Round(100*time.Millisecond))
	if d != freed {
		t.Errorf("gpu-d has GPU %s, want the freed %s (%s is still held)", d, freed, held)
	}

	start = time.Now()
	for _, name := range []string{"gpu-a", "gpu-b", "gpu-d"} {
		e.deletePod(t, ns, name)
	}
	l.assertHostClean()
	t.Logf("pods deleted and the host clean in %v", time.Since(start).Round(100*time.Millisecond))
}

var gpuLogLine = regexp.MustCompile(`(?m)^index=(\d) visible=(.*)$`)

// gpuOf waits for the pod to run and returns the GPU it sees: the single /dev/nvidia<n>
// device and NVIDIA_GPU_INDEX from the CDI spec must agree.
func (l *gpuLab) gpuOf(ns, name string) string {
	l.t.Helper()
	l.e.waitPod(l.t, ns, name, 90*time.Second, "running", running)
	var out string
	l.e.waitFor(l.t, 30*time.Second, "log of "+name, func(ctx context.Context) (bool, error) {
		var err error
		out, err = l.e.kubectl(ctx, l.t, "", "logs", "-n", ns, name)
		return gpuLogLine.MatchString(out), err
	})
	m := gpuLogLine.FindStringSubmatch(out)
	devices := strings.Fields(strings.TrimSpace(out[:strings.Index(out, "index=")]))
	if len(devices) != 1 || devices[0] != "/dev/nvidia"+m[1] {
		l.t.Errorf("%s: devices %q, NVIDIA_GPU_INDEX=%s: want exactly /dev/nvidia%s", name, devices, m[1], m[1])
	}
	if m[2] != "void" {
		l.t.Errorf("%s: NVIDIA_VISIBLE_DEVICES=%q, want void (devices come from CDI)", name, m[2])
	}
	return m[1]
}

func newGPULab(t *testing.T, e *env, node string) *gpuLab {
	t.Helper()
	return newGPULabWith(t, e, node, true, nil)
}

// newGPULabWith makes a lab whose containerd has CDI on or off; runtimes, if set, writes what
// it needs into the lab's directory and returns more of containerd's configuration.
func newGPULabWith(t *testing.T, e *env, node string, cdi bool, runtimes func(*gpuLab) string) *gpuLab {
	t.Helper()
	dir, err := os.MkdirTemp("", "satellite-gpu-")
	if err != nil {
		t.Fatal(err)
	}
	l := &gpuLab{t: t, e: e, dir: dir, socket: filepath.Join(dir, "containerd.sock"), node: node, satLog: filepath.Join(dir, "satellite.log")}
	t.Cleanup(l.cleanup)
	for _, d := range []string{"bin", "cdi", "cni", "pods", "volumes"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l.write("bin/nvidia-smi", smiScript(gpuSMIOutput), 0o755)
	l.write("cdi/nvidia.yaml", gpuCDISpec, 0o644)
	l.write("cni/99-loopback.conflist", `{"cniVersion":"0.4.0","name":"satellite-loopback","plugins":[{"type":"loopback"}]}`+"\n", 0o644)
	var more string
	if runtimes != nil {
		more = runtimes(l)
	}
	l.write("containerd.toml", fmt.Sprintf(`version = 3
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp"]
root = "%[1]s/root"
state = "%[1]s/state"
[grpc]
  address = "%[2]s"
[ttrpc]
  address = "%[2]s.ttrpc"
[debug]
  address = ""
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "localhost/satellite/pause:3.10"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  enable_cdi = %[3]t
  cdi_spec_dirs = ["%[1]s/cdi"]
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  Root = "%[1]s/runc"
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "%[1]s/cni"
`, dir, l.socket, cdi)+more, 0o644)

	// The environment's containerd 2 binary, its own shim beside it first in PATH.
	ctrdBin := filepath.Dir(e.get(t, "CTR"))
	cmd := exec.Command("nsenter", "--net=/run/netns/"+e.get(t, "HOST_NETNS"), "env", "PATH="+ctrdBin+":"+os.Getenv("PATH"),
		filepath.Join(ctrdBin, "containerd"), "--config", filepath.Join(dir, "containerd.toml"))
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	l.ctrd = &throwawayContainerd{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(l.ctrd.done) }()
	e.waitFor(t, 30*time.Second, "containerd at "+l.socket, func(ctx context.Context) (bool, error) {
		return exec.CommandContext(ctx, e.get(t, "CTR"), "-a", l.socket, "version").Run() == nil, nil
	})
	images := filepath.Join(filepath.Dir(e.get(t, "KUBECONFIG")), "images")
	for _, img := range []string{"pause.tar", "busybox.tar"} {
		if out, err := exec.Command(e.get(t, "CTR"), "-a", l.socket, "-n", "k8s.io", "images", "import", "--all-platforms", filepath.Join(images, img)).CombinedOutput(); err != nil {
			t.Fatalf("import %s: %v\n%s", img, err, out)
		}
	}
	return l
}

func (l *gpuLab) write(name, content string, mode os.FileMode) {
	l.t.Helper()
	if err := os.WriteFile(filepath.Join(l.dir, name), []byte(content), mode); err != nil {
		l.t.Fatal(err)
	}
}

func (l *gpuLab) startSatellite() {
	l.t.Helper()
	e, t := l.e, l.t
	dev := filepath.Dir(e.get(t, "KUBECONFIG"))
	l.sat = exec.Command("../../_output/bin/satellite", "--kubeconfig", filepath.Join(dev, "satellite.kubeconfig"),
		"--node-ip", "10.213.0.1", "--listen-address", gpuListen,
		"--ssh", e.get(t, "HOST_SSH"), "--ssh-key", e.get(t, "HOST_SSH_KEY"), "--known-hosts", e.get(t, "HOST_KNOWN_HOSTS"),
		"--containerd-socket", l.socket, "--containerd-root", filepath.Join(l.dir, "root"),
		"--pod-log-dir", filepath.Join(l.dir, "pods"), "--pod-dir", filepath.Join(l.dir, "volumes"),
		"--nvidia-smi", filepath.Join(l.dir, "bin", "nvidia-smi"),
		"--csr-self-approve", "--client-ca-file", filepath.Join(dev, "pki", "ca.crt"), "--log-level", "debug",
		"--tunnel=false") // the environment's Satellite routes the one host already
	if !l.eniNamed {
		l.sat.Args = append(l.sat.Args, "--node-name", l.node)
	}
	l.sat.Args = append(l.sat.Args, l.args...)
	l.sat.Env = append(os.Environ(), l.env...)
	log, err := os.OpenFile(l.satLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	l.sat.Stdout, l.sat.Stderr = log, log
	if err := l.sat.Start(); err != nil {
		t.Fatal(err)
	}
}

// killSatellite kills Satellite with SIGKILL: nothing is saved, containers keep running.
func (l *gpuLab) killSatellite() {
	if l.sat == nil || l.sat.Process == nil {
		return
	}
	_ = l.sat.Process.Kill()
	_ = l.sat.Wait()
	l.sat = nil
}

// logSize is how much the lab's Satellites have logged so far.
func (l *gpuLab) logSize() int64 {
	l.t.Helper()
	st, err := os.Stat(l.satLog)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return st.Size()
}

// waitLogged waits for a Satellite of the lab to log text past offset from.
func (l *gpuLab) waitLogged(from int64, text string, timeout time.Duration) {
	l.t.Helper()
	l.e.waitFor(l.t, timeout, "Satellite to log "+text, func(context.Context) (bool, error) {
		b, err := os.ReadFile(l.satLog)
		if err != nil || int64(len(b)) < from {
			return false, err
		}
		return strings.Contains(string(b[from:]), text), nil
	})
}

func (l *gpuLab) stopSatellite() {
	stopGracefully(l.sat)
	l.sat = nil
}

// runtime reaches the lab's containerd the way Satellite does: CRI over SSH.
func (l *gpuLab) runtime() (*remote.Runtime, func(), error) {
	signer, err := remote.LoadSigner(l.e.vars["HOST_SSH_KEY"])
	if err != nil {
		return nil, nil, err
	}
	user, addr, _ := strings.Cut(l.e.vars["HOST_SSH"], "@")
	h, err := remote.NewHost(remote.Config{Addr: addr, User: user, Signer: signer, KnownHosts: l.e.vars["HOST_KNOWN_HOSTS"]})
	if err != nil {
		return nil, nil, err
	}
	rt, err := remote.NewRuntime(h, remote.RuntimeConfig{Socket: l.socket, CallTimeout: 10 * time.Second})
	if err != nil {
		_ = h.Close()
		return nil, nil, err
	}
	return rt, func() { _ = rt.Close(); _ = h.Close() }, nil
}

// assertHostClean fails unless the lab's containerd has no sandbox and no container left.
func (l *gpuLab) assertHostClean() {
	l.t.Helper()
	rt, done, err := l.runtime()
	if err != nil {
		l.t.Fatal(err)
	}
	defer done()
	var left []string
	l.e.waitFor(l.t, 15*time.Second, "the host to have nothing left", func(ctx context.Context) (bool, error) {
		left = nil
		sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			return false, err
		}
		for _, s := range sbs.Items {
			left = append(left, "sandbox "+s.Metadata.GetName())
		}
		cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			return false, err
		}
		for _, c := range cs.Containers {
			left = append(left, "container "+c.Metadata.GetName())
		}
		return len(left) == 0, nil
	})
}

// cleanup stops Satellite, removes whatever pods the lab's containerd still runs (a failed
// test), stops containerd, deletes the node and the lab's directory.
func (l *gpuLab) cleanup() {
	t, e := l.t, l.e
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l.stopSatellite()
	if err := e.client.CoreV1().Nodes().Delete(ctx, l.node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete node %s: %v", l.node, err)
	}
	if l.ctrd != nil {
		if rt, done, err := l.runtime(); err == nil {
			if sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
				for _, s := range sbs.Items {
					_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id})
					_, _ = rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id})
				}
			}
			done()
		}
		l.ctrd.stop(t)
	}
	if t.Failed() {
		b, _ := os.ReadFile(l.satLog)
		t.Logf("satellite log (tail):\n%s", tail(string(b), 60))
		b, _ = os.ReadFile(filepath.Join(l.dir, "containerd.log"))
		t.Logf("containerd log (tail):\n%s", tail(string(b), 20))
	}
	// containerd leaves its snapshot and shm mounts when it is stopped with pods left.
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		var under []string
		for _, line := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], l.dir+"/") {
				under = append(under, f[1])
			}
		}
		for i := len(under) - 1; i >= 0; i-- {
			_ = syscall.Unmount(under[i], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(l.dir); err != nil {
		t.Errorf("remove %s: %v", l.dir, err)
	}
}
