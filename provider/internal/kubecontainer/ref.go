package kubecontainer

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Ref is the object of a container's events, as the kubelet's GenerateContainerRef makes it:
// the pod, with the container's field path. The API's event correlator groups repeated events
// (a probe failing every period) by it, as it does the kubelet's.
func Ref(pod *corev1.Pod, name string) *corev1.ObjectReference {
	path := "spec.containers{" + name + "}"
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			path = "spec.initContainers{" + name + "}"
		}
	}
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, ResourceVersion: pod.ResourceVersion, FieldPath: path}
}

// NodeRef is the object of a node's events, as the kubelet makes it: the node, with its name
// for UID.
func NodeRef(name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)}
}
