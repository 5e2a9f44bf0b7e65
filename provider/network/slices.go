package network

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// SlicePorts lists the ports a Service's EndpointSlice targets on the pods of node: the
// slice's ports (the EndpointSlice controller has resolved named targetPorts to numbers), when
// one of its endpoints is on node; none otherwise. A port without a number (a named port no
// pod of the slice declares) is left out.
func SlicePorts(slice *discoveryv1.EndpointSlice, node string) []Port {
	onNode := false
	for _, ep := range slice.Endpoints {
		if ep.NodeName != nil && *ep.NodeName == node {
			onNode = true
			break
		}
	}
	if !onNode {
		return nil
	}
	set := map[Port]bool{}
	for _, p := range slice.Ports {
		if p.Port == nil || *p.Port <= 0 {
			continue
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = protocol(*p.Protocol)
		}
		set[Port{Protocol: proto, Port: *p.Port}] = true
	}
	return sorted(set)
}
