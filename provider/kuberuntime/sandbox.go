package kuberuntime

import (
	"path"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodLogDir is the pod's log directory on the host, named as the kubelet names it
// (/var/log/pods/<namespace>_<name>_<uid>).
func PodLogDir(root, namespace, name, uid string) string {
	return path.Join(root, namespace+"_"+name+"_"+uid)
}

// SandboxConfig is the CRI sandbox for a pod. Satellite runs every pod in the host's network
// namespace (the host is not on the cluster's pod network), so the sandbox asks for the
// NODE network mode whatever spec.hostNetwork says, and the pod's IP is the host's.
func SandboxConfig(nodeName, logRoot string, pod *corev1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{}
	for k, v := range pod.Labels {
		labels[k] = v
	}
	for k, v := range podIdentity(nodeName, pod) {
		labels[k] = v
	}
	annotations := map[string]string{}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		annotations[AnnotationGracePeriod] = strconv.FormatInt(*g, 10)
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      pod.Name,
			Namespace: pod.Namespace,
			Uid:       string(pod.UID),
			Attempt:   attempt,
		},
		LogDirectory: PodLogDir(logRoot, pod.Namespace, pod.Name, string(pod.UID)),
		Labels:       labels,
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_NODE,
					Pid:     pidMode(pod),
					Ipc:     ipcMode(pod),
				},
				// containerd refuses a privileged container in a sandbox that is not.
				Privileged: anyPrivileged(pod),
			},
			Sysctls: podSysctls(pod),
		},
	}
}

// podIdentity are the labels that tie a CRI object to its pod and to this node.
func podIdentity(nodeName string, pod *corev1.Pod) map[string]string {
	return map[string]string{
		LabelPodName:      pod.Name,
		LabelPodNamespace: pod.Namespace,
		LabelPodUID:       string(pod.UID),
		LabelNode:         nodeName,
	}
}

func pidMode(pod *corev1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostPID {
		return runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		return runtimeapi.NamespaceMode_POD
	}
	return runtimeapi.NamespaceMode_CONTAINER
}

// anyPrivileged reports whether a container of the pod is privileged, which makes the sandbox
// privileged as the kubelet does.
func anyPrivileged(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				return true
			}
		}
	}
	return false
}
