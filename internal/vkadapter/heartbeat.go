package vkadapter

import (
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// withHeartbeat is a client whose nodes and leases are another's: virtual-kubelet's node
// controller takes both from the one client it builds the node with.
type withHeartbeat struct {
	kubernetes.Interface
	heartbeat kubernetes.Interface
}

func (c withHeartbeat) CoreV1() corev1client.CoreV1Interface {
	return heartbeatCoreV1{CoreV1Interface: c.Interface.CoreV1(), heartbeat: c.heartbeat.CoreV1()}
}

func (c withHeartbeat) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return c.heartbeat.CoordinationV1()
}

type heartbeatCoreV1 struct {
	corev1client.CoreV1Interface
	heartbeat corev1client.CoreV1Interface
}

func (c heartbeatCoreV1) Nodes() corev1client.NodeInterface { return c.heartbeat.Nodes() }
