package nodestatus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/internal/fake"
)

// Allocatable is capacity minus what is reserved, as the kubelet computes it: never below
// zero, and reservations of resources the node does not have change nothing.
func TestNodeObjectReserved(t *testing.T) {
	t.Parallel()
	facts := &hostFacts{CPUs: 4, MemoryBytes: 16 << 30, DiskBytes: 100 << 30, Arch: "amd64", OperatingSystem: "linux"}
	m := New(Config{NodeName: "n", MaxPods: 110, Reserved: corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("1500m"),
		corev1.ResourceMemory:           resource.MustParse("1Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"), // more than there is
		gpu.ResourceName:                resource.MustParse("1"),     // the node has none
	}}, Deps{GPUs: gpu.New(gpu.Config{}, nil, nil)})
	node := m.nodeObject(facts, nil, "containerd://2.2.1", true, "KubeletReady", "")
	for name, want := range map[corev1.ResourceName]struct{ capacity, allocatable string }{
		corev1.ResourceCPU:              {"4", "2500m"},
		corev1.ResourceMemory:           {"16Gi", "15Gi"},
		corev1.ResourceEphemeralStorage: {"100Gi", "0"},
		corev1.ResourcePods:             {"110", "110"},
	} {
		c, a := node.Status.Capacity[name], node.Status.Allocatable[name]
		if c.Cmp(resource.MustParse(want.capacity)) != 0 || a.Cmp(resource.MustParse(want.allocatable)) != 0 {
			t.Errorf("%s: capacity %s allocatable %s, want %s and %s", name, c.String(), a.String(), want.capacity, want.allocatable)
		}
	}
	if _, ok := node.Status.Allocatable[gpu.ResourceName]; ok {
		t.Error("a reservation of a resource the node lacks made it appear in allocatable")
	}
	// Without facts (the host never answered) only pods are advertised.
	node = m.nodeObject(nil, nil, "", false, ReasonSSHUnreachable, "down")
	if len(node.Status.Allocatable) != 1 {
		t.Errorf("allocatable without host facts: %v, want pods only", node.Status.Allocatable)
	}
}

// GPUs are advertised, with their labels, in CDI and env mode; with GPUs off or none on the
// host, not at all.
func TestNodeObjectGPUs(t *testing.T) {
	t.Parallel()
	a100 := gpu.Parse("0", strings.Split(smiA100x8, "\n"), nil)
	none := gpu.Reading{}
	facts := &hostFacts{CPUs: 4, MemoryBytes: 1 << 30, DiskBytes: 1 << 30, Arch: "amd64", OperatingSystem: "linux"}
	for _, tt := range []struct {
		mode    gpu.Mode
		reading gpu.Reading
		want    int64 // GPUs advertised; -1 none
	}{
		{gpu.ModeCDI, a100, 8},
		{gpu.ModeEnv, a100, 8},
		{gpu.ModeOff, a100, -1},
		{gpu.ModeCDI, none, -1},
	} {
		gpus := gpu.New(gpu.Config{Mode: tt.mode}, nil, nil)
		m := New(Config{NodeName: "n", MaxPods: 10}, Deps{GPUs: gpus})
		gpus.Observe(context.Background(), tt.reading)
		node := m.nodeObject(facts, gpus.Devices(), "containerd://2.2.1", true, "KubeletReady", "")
		for _, l := range []corev1.ResourceList{node.Status.Capacity, node.Status.Allocatable} {
			q, ok := l[gpu.ResourceName]
			switch {
			case tt.want < 0 && ok:
				t.Errorf("mode %s: advertises %s GPUs, want none", tt.mode, q.String())
			case tt.want >= 0 && (!ok || q.Cmp(*resource.NewQuantity(tt.want, resource.DecimalSI)) != 0):
				t.Errorf("mode %s: %v GPUs, want %d", tt.mode, l, tt.want)
			}
		}
		if got := node.Labels["nvidia.com/gpu.product"]; (tt.want > 0) != (got == "NVIDIA-A100-SXM4-80GB") {
			t.Errorf("mode %s: product label %q", tt.mode, got)
		}
	}
}

// Ready follows the SSH link and the runtime: a host that cannot be reached turns the node
// NotReady with the reason, HostDown says so for the requests that need the host, and a
// Warning event names it; once the host is back, the node is Ready again with a NodeReady event.
func TestNodeReadinessFollowsTheHost(t *testing.T) {
	t.Parallel()
	host, cri := fake.NewHost(), fake.NewRuntime()
	host.Script(fake.Command{Prefix: `echo "cpus=`, Stdout: hostFactsGood})
	recorder := record.NewFakeRecorder(10)
	m := New(Config{NodeName: "n", MaxPods: 10}, Deps{Host: host, Runtime: cri, GPUs: gpu.New(gpu.Config{}, nil, nil), Recorder: recorder})
	ctx := context.Background()
	var sent []*corev1.Node
	m.NotifyNodeStatus(ctx, func(n *corev1.Node) { sent = append(sent, n) })
	ready := func(n *corev1.Node) (corev1.ConditionStatus, string) {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status, c.Reason
			}
		}
		return "", ""
	}

	node := m.Node(ctx)
	if s, r := ready(node); s != corev1.ConditionTrue || r != "KubeletReady" || m.HostDown() != nil {
		t.Fatalf("healthy host: Ready %s (%s), host down %v", s, r, m.HostDown())
	}
	if v := node.Status.NodeInfo.ContainerRuntimeVersion; v != "fake://1.0.0" || node.Status.NodeInfo.Architecture != "amd64" {
		t.Errorf("node info %+v, want the runtime's version and the host's facts", node.Status.NodeInfo)
	}

	host.PingErr = errors.New("connection refused")
	if m.check(ctx, false) {
		t.Fatal("host unreachable: check says Ready")
	}
	if err := m.HostDown(); !errors.Is(err, ErrHostUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("HostDown() = %v, want ErrHostUnreachable with the cause", err)
	}
	node = m.Node(ctx)
	if s, r := ready(node); s != corev1.ConditionFalse || r != ReasonSSHUnreachable || node.Status.NodeInfo.ContainerRuntimeVersion != "fake://1.0.0" {
		t.Errorf("host unreachable: Ready %s (%s), runtime %q; want False (SSHUnreachable), the last version kept", s, r, node.Status.NodeInfo.ContainerRuntimeVersion)
	}

	host.PingErr = nil
	if !m.check(ctx, false) || m.HostDown() != nil {
		t.Errorf("host back: not Ready, or host down %v", m.HostDown())
	}
	close(recorder.Events)
	var events []string
	for e := range recorder.Events {
		events = append(events, e)
	}
	want := []string{"Warning SSHUnreachable connection refused", "Normal NodeReady Node n status is now: NodeReady"}
	if !slices.Equal(events, want) {
		t.Errorf("events %q, want %q", events, want)
	}
	if len(sent) != 3 {
		t.Errorf("%d node updates sent, want 3 (first read, down, back)", len(sent))
	}
}
