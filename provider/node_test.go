package provider

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
		ResourceGPU:                     resource.MustParse("1"),     // the node has none
	}}, nil, nil, nil, nil)
	node := p.nodeObject(facts, "containerd://2.2.1", true, "KubeletReady", "")
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
	if _, ok := node.Status.Allocatable[ResourceGPU]; ok {
		t.Error("a reservation of a resource the node lacks made it appear in allocatable")
	}
	// Without facts (the host never answered) only pods are advertised.
	node = p.nodeObject(nil, "", false, ReasonSSHUnreachable, "down")
	if len(node.Status.Allocatable) != 1 {
		t.Errorf("allocatable without host facts: %v, want pods only", node.Status.Allocatable)
	}
}

func TestGPUChanges(t *testing.T) {
	t.Parallel()
	a := GPU{Index: 0, UUID: "GPU-a"}
	b := GPU{Index: 1, UUID: "GPU-b"}
	c := GPU{Index: 1, UUID: "GPU-c"}
	uuids := func(gs []GPU) (s []string) {
		for _, g := range gs {
			s = append(s, g.UUID)
		}
		return s
	}
	for _, tt := range []struct {
		name        string
		old, cur    []GPU
		lost, added []string
	}{
		{"same", []GPU{a, b}, []GPU{a, b}, nil, nil},
		{"one lost", []GPU{a, b}, []GPU{a}, []string{"GPU-b"}, nil},
		{"all lost", []GPU{a, b}, nil, []string{"GPU-a", "GPU-b"}, nil},
		{"replaced in its slot", []GPU{a, b}, []GPU{a, c}, []string{"GPU-b"}, []string{"GPU-c"}},
		{"first reading", nil, []GPU{a}, nil, []string{"GPU-a"}},
		{"renumbered only", []GPU{a, b}, []GPU{{Index: 0, UUID: "GPU-b"}, {Index: 1, UUID: "GPU-a"}}, nil, nil},
	} {
		lost, added := gpuChanges(tt.old, tt.cur)
		if got := uuids(lost); !slices.Equal(got, tt.lost) {
			t.Errorf("%s: lost %v, want %v", tt.name, got, tt.lost)
		}
		if got := uuids(added); !slices.Equal(got, tt.added) {
			t.Errorf("%s: added %v, want %v", tt.name, got, tt.added)
		}
	}
}
