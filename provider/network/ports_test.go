package network

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func podWith(name string, created time.Time, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "uid-" + "name", CreationTimestamp: metav1.NewTime(created)},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init"}},
			Containers:     []corev1.Container{{Name: "main", Ports: ports}},
		},
	}
}

func TestPodPorts(t *testing.T) {
	pod := podWith("a", time.Time{}, corev1.ContainerPort{ContainerPort: 80}, corev1.ContainerPort{ContainerPort: 53, Protocol: corev1.ProtocolUDP})
	pod.Spec.InitContainers[0].Ports = []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolTCP}, {ContainerPort: 80}}
	got := PodPorts(pod)
	want := []Port{{corev1.ProtocolTCP, 53}, {corev1.ProtocolUDP, 53}, {corev1.ProtocolTCP, 80}}
	if len(got) != len(want) {
		t.Fatalf("PodPorts = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("PodPorts = %v, want %v", got, want)
		}
	}
}

func TestConflict(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	web := podWith("web", t0, corev1.ContainerPort{ContainerPort: 8080})
	dns := podWith("dns", t0, corev1.ContainerPort{ContainerPort: 53, Protocol: corev1.ProtocolUDP})
	kubelet := []Port{{corev1.ProtocolTCP, 10250}}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		holders []*corev1.Pod
		port    Port
		by      string
	}{
		{"same port and protocol", podWith("b", t0, corev1.ContainerPort{ContainerPort: 8080}), []*corev1.Pod{dns, web}, Port{corev1.ProtocolTCP, 8080}, "ns/web"},
		{"same port, other protocol", podWith("b", t0, corev1.ContainerPort{ContainerPort: 53}), []*corev1.Pod{dns, web}, Port{}, ""},
		{"no ports", podWith("b", t0), []*corev1.Pod{dns, web}, Port{}, ""},
		{"Satellite's own port", podWith("b", t0, corev1.ContainerPort{ContainerPort: 10250}), nil, Port{corev1.ProtocolTCP, 10250}, "Satellite's own"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port, by, ok := Conflict(tc.pod, tc.holders, kubelet)
			if ok != (tc.by != "") || port != tc.port || by != tc.by {
				t.Errorf("Conflict = %v, %q, %v; want %v, %q", port, by, ok, tc.port, tc.by)
			}
		})
	}
}

func TestBefore(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	older, newer := podWith("a", t0), podWith("b", t0.Add(time.Second))
	if !Before(older, newer) || Before(newer, older) {
		t.Error("the older pod does not come first")
	}
	x, y := podWith("x", t0), podWith("y", t0)
	x.UID, y.UID = "1", "2"
	if !Before(x, y) || Before(y, x) {
		t.Error("a tie is not broken by UID")
	}
}

func TestSlicePorts(t *testing.T) {
	here, there := "sat-node", "other-node"
	port := func(n int32, proto corev1.Protocol) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Port: ptr.To(n), Protocol: ptr.To(proto)}
	}
	slice := &discoveryv1.EndpointSlice{
		Endpoints: []discoveryv1.Endpoint{{NodeName: ptr.To(there)}, {NodeName: ptr.To(here)}},
		Ports:     []discoveryv1.EndpointPort{port(8080, corev1.ProtocolTCP), port(53, corev1.ProtocolUDP), {Name: ptr.To("unresolved")}},
	}
	got := SlicePorts(slice, here)
	want := []Port{{corev1.ProtocolUDP, 53}, {corev1.ProtocolTCP, 8080}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("SlicePorts = %v, want %v", got, want)
	}
	slice.Endpoints = slice.Endpoints[:1]
	if got := SlicePorts(slice, here); len(got) != 0 {
		t.Errorf("SlicePorts of a slice with no endpoint on the node = %v, want none", got)
	}
}
