package kuberuntime

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// admission is why the pod cannot run on this node, as the kubelet's admission handlers
// decide it before anything is created: a reason and a message ("" when it may run). With
// denyHostAccess, pods that reach the host (hostAccess) are refused as well.
func Admit(pod *corev1.Pod, denyHostAccess bool) (reason, message string) {
	if pod.Spec.OS != nil && pod.Spec.OS.Name != corev1.Linux {
		// lifecycle.PodOSNotSupported (pkg/kubelet/lifecycle/predicate.go)
		return "PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS"
	}
	if what := hostAccess(pod); denyHostAccess && what != "" {
		return "HostAccessDenied", "Pod was rejected: it asks for " + what + ", which reaches the remote host, and this Satellite node refuses host access (--deny-host-access)"
	}
	if err := checkSysctls(pod); err != nil {
		return "SysctlForbidden", "forbidden sysctl: " + err.Error()
	}
	for i := range pod.Spec.Volumes {
		if why := supportedVolume(&pod.Spec.Volumes[i]); why != "" {
			return "UnsupportedVolume", why
		}
	}
	return "", ""
}

// hostAccess names the first thing the pod asks for that reaches the host outside its
// containers, "" when there is none: a privileged container, a hostPath volume, the host's
// PID or IPC namespace. Pod Security's baseline level refuses each of them.
func hostAccess(pod *corev1.Pod) string {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
				return fmt.Sprintf("a privileged container (%q)", c.Name)
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			return fmt.Sprintf("a hostPath volume (%q: %s)", v.Name, v.HostPath.Path)
		}
	}
	switch {
	case pod.Spec.HostPID:
		return "the host's PID namespace (hostPID)"
	case pod.Spec.HostIPC:
		return "the host's IPC namespace (hostIPC)"
	}
	return ""
}

// safeSysctls are the kubelet's safe sysctls (pkg/kubelet/sysctl/safe_sysctls.go), by the
// namespace that isolates them. Every pod on a Satellite node shares the host's network, so
// the network ones are refused as the kubelet refuses them to a hostNetwork pod; unsafe
// sysctls are refused as by a kubelet without --allowed-unsafe-sysctls.
var safeSysctls = map[string]string{
	"kernel.shm_rmid_forced":              "IPC",
	"net.ipv4.ip_local_port_range":        "net",
	"net.ipv4.tcp_syncookies":             "net",
	"net.ipv4.ping_group_range":           "net",
	"net.ipv4.ip_unprivileged_port_start": "net",
	"net.ipv4.ip_local_reserved_ports":    "net",
	"net.ipv4.tcp_keepalive_time":         "net",
	"net.ipv4.tcp_fin_timeout":            "net",
	"net.ipv4.tcp_keepalive_intvl":        "net",
	"net.ipv4.tcp_keepalive_probes":       "net",
	"net.ipv4.tcp_rmem":                   "net",
	"net.ipv4.tcp_wmem":                   "net",
}

// checkSysctls is the kubelet's sysctl admission (pkg/kubelet/sysctl/allowlist.go,
// validateSysctl) for a pod in the host's network.
func checkSysctls(pod *corev1.Pod) error {
	sc := pod.Spec.SecurityContext
	if sc == nil {
		return nil
	}
	for _, s := range sc.Sysctls {
		name := normalizeSysctl(s.Name)
		ns, ok := safeSysctls[name]
		switch {
		case !ok:
			return fmt.Errorf("%q not allowlisted", name)
		case ns == "net":
			return fmt.Errorf("%q not allowed with host net enabled", name)
		case ns == "IPC" && pod.Spec.HostIPC:
			return fmt.Errorf("%q not allowed with host IPC enabled", name)
		}
	}
	return nil
}

// normalizeSysctl writes a sysctl with dots, as sysctl(8) does: net/ipv4/ip_forward is
// net.ipv4.ip_forward, and in a/b.c/d the dot of a name part stays a slash
// (k8s.io/component-helpers/node/util/sysctl.NormalizeName).
func normalizeSysctl(name string) string {
	if i := strings.IndexAny(name, "./"); i < 0 || name[i] == '.' {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		switch r {
		case '.':
			b.WriteRune('/')
		case '/':
			b.WriteRune('.')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// podSysctls are the pod's sysctls for its sandbox, by name (admitted ones only).
func podSysctls(pod *corev1.Pod) map[string]string {
	if pod.Spec.SecurityContext == nil || len(pod.Spec.SecurityContext.Sysctls) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, s := range pod.Spec.SecurityContext.Sysctls {
		out[normalizeSysctl(s.Name)] = s.Value
	}
	return out
}

// ipcMode is the pod's IPC namespace: the host's with hostIPC, else its own.
func ipcMode(pod *corev1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostIPC {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

// supportedVolume says why a volume cannot be served on a Satellite node, or "".
func supportedVolume(v *corev1.Volume) string {
	s := v.VolumeSource
	switch {
	case s.EmptyDir != nil, s.Secret != nil, s.ConfigMap != nil, s.DownwardAPI != nil, s.Projected != nil, s.HostPath != nil:
		return ""
	}
	return fmt.Sprintf("volume %q: %s volumes are not supported on Satellite nodes (the remote host is outside the cluster and cannot attach its storage); use emptyDir, hostPath, configMap, secret, downwardAPI or projected", v.Name, volumeType(s))
}

// volumeType is the pod spec's name of the volume's source, like persistentVolumeClaim.
func volumeType(s corev1.VolumeSource) string {
	rv := reflect.ValueOf(s)
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			return strings.Split(rv.Type().Field(i).Tag.Get("json"), ",")[0]
		}
	}
	return "unknown"
}
