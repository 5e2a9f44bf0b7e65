package provider

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/satellite-vk/satellite/provider/gpu"
)

// Allocatable is capacity minus what is reserved, as the kubelet computes it: never below
// zero, and reservations of resources the node does not have change nothing.
func TestNodeObjectReserved(t *testing.T) {
	t.Parallel()
	facts := &hostFacts{CPUs: 4, MemoryBytes: 16 << 30, DiskBytes: 100 << 30, Arch: "amd64", OperatingSystem: "linux"}
	p := New(Config{NodeName: "n", MaxPods: 110, Reserved: corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("1500m"),
		corev1.ResourceMemory:           resource.MustParse("1Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"), // more than there is
		gpu.ResourceName:                resource.MustParse("1"),     // the node has none
	}}, Deps{})
	node := p.nodeObject(facts, nil, "containerd://2.2.1", true, "KubeletReady", "")
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
	node = p.nodeObject(nil, nil, "", false, ReasonSSHUnreachable, "down")
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
		p := New(Config{NodeName: "n", MaxPods: 10, GPUMode: tt.mode}, Deps{})
		p.gpu.Observe(context.Background(), tt.reading)
		node := p.nodeObject(facts, p.gpu.Devices(), "containerd://2.2.1", true, "KubeletReady", "")
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
