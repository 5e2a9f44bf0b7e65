package provider

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerLogPath is the container's log file relative to the sandbox's log directory, as the
// kubelet names it: <container>/<restartCount>.log.
func containerLogPath(name string, attempt uint32) string {
	return fmt.Sprintf("%s/%d.log", name, attempt)
}

// containerConfig is the CRI container for one of the pod's containers. The pod's env has
// already been resolved to literals (virtual-kubelet resolves valueFrom references before
// CreatePod).
func containerConfig(nodeName string, pod *corev1.Pod, c *corev1.Container, init bool, attempt uint32) *runtimeapi.ContainerConfig {
	labels := podIdentity(nodeName, pod)
	labels[labelContainerName] = c.Name
	if init {
		labels[labelInit] = "true"
	}
	annotations := map[string]string{
		annotationRestartCount:      strconv.FormatUint(uint64(attempt), 10),
		annotationTerminationPath:   c.TerminationMessagePath,
		annotationTerminationPolicy: string(c.TerminationMessagePolicy),
	}
	envs := make([]*runtimeapi.KeyValue, 0, len(c.Env))
	for _, e := range c.Env {
		envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: e.Value})
	}
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:       &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image},
		Command:     c.Command,
		Args:        c.Args,
		WorkingDir:  c.WorkingDir,
		Envs:        envs,
		Labels:      labels,
		Annotations: annotations,
		LogPath:     containerLogPath(c.Name, attempt),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_NODE,
					Pid:     pidMode(pod),
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
}
