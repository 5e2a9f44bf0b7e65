package kuberuntime

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerLogPath is the container's log file relative to the sandbox's log directory, as the
// kubelet names it: <container>/<restartCount>.log.
func ContainerLogPath(name string, attempt uint32) string {
	return fmt.Sprintf("%s/%d.log", name, attempt)
}

// ContainerConfig is the CRI container for one of the pod's containers. Its env holds the
// literal values; prepareContainer replaces it with the resolved environment.
func ContainerConfig(nodeName string, pod *corev1.Pod, c *corev1.Container, init bool, attempt uint32) *runtimeapi.ContainerConfig {
	labels := podIdentity(nodeName, pod)
	labels[LabelContainerName] = c.Name
	if init {
		labels[LabelInit] = "true"
	}
	annotations := map[string]string{
		AnnotationRestartCount:      strconv.FormatUint(uint64(attempt), 10),
		AnnotationTerminationPath:   c.TerminationMessagePath,
		AnnotationTerminationPolicy: string(c.TerminationMessagePolicy),
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
		LogPath:     ContainerLogPath(c.Name, attempt),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       linuxResources(c),
			SecurityContext: securityContext(pod, c),
		},
	}
}

// securityContext is the CRI security context of a container from the pod's and the
// container's securityContext, as the kubelet builds it (pkg/kubelet/kuberuntime/security_context.go):
// the container's settings win over the pod's; fsGroup joins the supplemental groups.
func securityContext(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode_NODE,
			Pid:     pidMode(pod),
			Ipc:     ipcMode(pod),
		},
	}
	var seccomp *corev1.SeccompProfile
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = append(sc.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
		seccomp = psc.SeccompProfile
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
		}
		if csc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
		}
		if csc.Privileged != nil {
			sc.Privileged = *csc.Privileged
		}
		if csc.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
		}
		if csc.Capabilities != nil {
			sc.Capabilities = &runtimeapi.Capability{}
			for _, cp := range csc.Capabilities.Add {
				sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(cp))
			}
			for _, cp := range csc.Capabilities.Drop {
				sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(cp))
			}
		}
		if csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation && !sc.Privileged {
			sc.NoNewPrivs = true
		}
		if csc.SeccompProfile != nil {
			seccomp = csc.SeccompProfile
		}
	}
	sc.Seccomp = seccompProfile(seccomp, sc.Privileged)
	sc.Capabilities = withoutNetRaw(sc.Capabilities)
	return sc
}

// withoutNetRaw drops NET_RAW, which containerd grants by default, unless the container adds
// it. Every pod on a Satellite node shares the host's network namespace, where a raw or
// packet socket reads and forges the host's traffic, its loopback included: the reason Pod
// Security's baseline level forbids hostNetwork, and why it lets no pod add NET_RAW. A pod
// that needs it (ping, tcpdump) adds it, as only a privileged-level namespace allows.
// docs/pod-spec.md says so.
func withoutNetRaw(caps *runtimeapi.Capability) *runtimeapi.Capability {
	if caps == nil {
		caps = &runtimeapi.Capability{}
	}
	for _, c := range caps.AddCapabilities {
		if c == "NET_RAW" || c == "CAP_NET_RAW" || c == "ALL" {
			return caps
		}
	}
	for _, c := range caps.DropCapabilities {
		if c == "NET_RAW" || c == "CAP_NET_RAW" || c == "ALL" {
			return caps
		}
	}
	caps.DropCapabilities = append(caps.DropCapabilities, "NET_RAW")
	return caps
}

// seccompProfile maps the API's seccomp profile; unset is unconfined, as with the kubelet
// without SeccompDefault.
func seccompProfile(sp *corev1.SeccompProfile, privileged bool) *runtimeapi.SecurityProfile {
	if sp == nil || privileged {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	}
	switch sp.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	case corev1.SeccompProfileTypeLocalhost:
		if sp.LocalhostProfile != nil {
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: *sp.LocalhostProfile}
		}
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
}
