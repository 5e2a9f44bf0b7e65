package network

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Port is a port on the node's address, by protocol.
type Port struct {
	Protocol corev1.Protocol
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// PodPorts lists the ports a pod's containers declare (containerPort, init containers and
// sidecars included), each once, sorted. An unset protocol is TCP, as the API defaults it.
func PodPorts(pod *corev1.Pod) []Port {
	seen := map[Port]bool{}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, cp := range c.Ports {
				seen[Port{Protocol: protocol(cp.Protocol), Port: cp.ContainerPort}] = true
			}
		}
	}
	return sorted(seen)
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func sorted(set map[Port]bool) []Port {
	out := make([]Port, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

// Admission's reason and message for a port conflict: the kubelet's for a hostPort conflict
// (pkg/kubelet/lifecycle/predicate.go, PredicateFailureError of the NodePorts filter).
const (
	ConflictReason  = "NodePorts"
	ConflictMessage = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
)

// Conflict tells whether pod wants a port that one of holders already holds, or one of
// reserved (Satellite's own listeners on the node's address), and which. Holders are the pods
// admitted before it; the caller decides which those are.
func Conflict(pod *corev1.Pod, holders []*corev1.Pod, reserved []Port) (Port, string, bool) {
	want := PodPorts(pod)
	for _, r := range reserved {
		for _, p := range want {
			if p == r {
				return p, "Satellite's own", true
			}
		}
	}
	for _, h := range holders {
		for _, hp := range PodPorts(h) {
			for _, p := range want {
				if p == hp {
					return p, h.Namespace + "/" + h.Name, true
				}
			}
		}
	}
	return Port{}, "", false
}

// Before tells whether pod a came to the node before pod b: the older one, as the kubelet
// admits pods in order of creation; the UID breaks a tie.
func Before(a, b *corev1.Pod) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.UID < b.UID
}
