package kuberuntime

import (
	"testing"

	"github.com/satellite-vk/satellite/provider/internal/fake"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	resources = fake.Resources
	samplePod = fake.SamplePod
)

func TestSandboxConfig(t *testing.T) {
	t.Parallel()
	pod := samplePod()
	cfg := SandboxConfig("node-a", "/var/log/pods", pod, 2)
	md := cfg.Metadata
	if md.Name != "web-0" || md.Namespace != "shop" || md.Uid != "1111-2222" || md.Attempt != 2 {
		t.Errorf("metadata = %+v", md)
	}
	if cfg.LogDirectory != "/var/log/pods/shop_web-0_1111-2222" {
		t.Errorf("log directory = %q", cfg.LogDirectory)
	}
	want := map[string]string{"app": "web", LabelPodName: "web-0", LabelPodNamespace: "shop", LabelPodUID: "1111-2222", LabelNode: "node-a"}
	for k, v := range want {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (pod labels must not override identity)", k, cfg.Labels[k], v)
		}
	}
	if cfg.Annotations["note"] != "x" || cfg.Annotations[AnnotationGracePeriod] != "45" {
		t.Errorf("annotations = %v", cfg.Annotations)
	}
	ns := cfg.Linux.SecurityContext.NamespaceOptions
	if ns.Network != runtimeapi.NamespaceMode_NODE || ns.Pid != runtimeapi.NamespaceMode_CONTAINER || ns.Ipc != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespaces = %+v, want host network, container pid, pod ipc", ns)
	}
	pod.Spec.HostPID = true
	if m := SandboxConfig("n", "/l", pod, 0).Linux.SecurityContext.NamespaceOptions.Pid; m != runtimeapi.NamespaceMode_NODE {
		t.Errorf("hostPID: pid mode %v", m)
	}
	share := true
	pod.Spec.HostPID, pod.Spec.ShareProcessNamespace = false, &share
	if m := SandboxConfig("n", "/l", pod, 0).Linux.SecurityContext.NamespaceOptions.Pid; m != runtimeapi.NamespaceMode_POD {
		t.Errorf("shareProcessNamespace: pid mode %v", m)
	}
}

func TestContainerConfig(t *testing.T) {
	t.Parallel()
	pod := samplePod()
	c := ContainerConfig("node-a", pod, &pod.Spec.Containers[0], false, 3)
	if c.Metadata.Name != "server" || c.Metadata.Attempt != 3 {
		t.Errorf("metadata = %+v", c.Metadata)
	}
	if c.Image.Image != "example.test/web:1" || c.WorkingDir != "/data" || c.LogPath != "server/3.log" {
		t.Errorf("image %q workdir %q log %q", c.Image.Image, c.WorkingDir, c.LogPath)
	}
	if len(c.Command) != 1 || c.Command[0] != "/srv" || len(c.Args) != 2 || c.Args[1] != "80" {
		t.Errorf("command %v args %v", c.Command, c.Args)
	}
	if len(c.Envs) != 2 || c.Envs[0].Key != "A" || c.Envs[0].Value != "1" || c.Envs[1].Key != "B" || c.Envs[1].Value != "" {
		t.Errorf("envs = %v", c.Envs)
	}
	if !c.Tty || !c.Stdin || c.StdinOnce {
		t.Errorf("tty %v stdin %v once %v", c.Tty, c.Stdin, c.StdinOnce)
	}
	if c.Labels[LabelContainerName] != "server" || c.Labels[LabelPodUID] != "1111-2222" || c.Labels[LabelNode] != "node-a" || c.Labels[LabelInit] != "" {
		t.Errorf("labels = %v", c.Labels)
	}
	if c.Annotations[AnnotationRestartCount] != "3" || c.Annotations[AnnotationTerminationPath] != "/dev/termination-log" {
		t.Errorf("annotations = %v", c.Annotations)
	}
	if c.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("network mode %v", c.Linux.SecurityContext.NamespaceOptions.Network)
	}
	if init := ContainerConfig("node-a", pod, &pod.Spec.Containers[0], true, 0); init.Labels[LabelInit] != "true" {
		t.Errorf("init label missing: %v", init.Labels)
	}
}

func TestSandboxPrivilegedWithAPrivilegedContainer(t *testing.T) {
	yes := true
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b", SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}}}
	if !SandboxConfig("n", "/logs", pod, 0).Linux.SecurityContext.Privileged {
		t.Error("sandbox of a pod with a privileged container is not privileged")
	}
	pod.Spec.Containers = pod.Spec.Containers[:1]
	if SandboxConfig("n", "/logs", pod, 0).Linux.SecurityContext.Privileged {
		t.Error("sandbox of an unprivileged pod is privileged")
	}
}
