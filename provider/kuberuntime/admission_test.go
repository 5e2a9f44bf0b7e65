package kuberuntime

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestAdmission(t *testing.T) {
	t.Parallel()
	sysctls := func(names ...string) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{}}}
		for _, n := range names {
			p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
		}
		return p
	}
	hostIPC := sysctls("kernel.shm_rmid_forced")
	hostIPC.Spec.HostIPC = true
	windows := &corev1.Pod{Spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Windows}}}
	nfs := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s", Path: "/"}}}}}}
	for _, tt := range []struct {
		name           string
		pod            *corev1.Pod
		reason, prefix string
	}{
		{"a safe IPC sysctl", sysctls("kernel.shm_rmid_forced"), "", ""},
		{"a linux pod", &corev1.Pod{Spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Linux}}}, "", ""},
		{"a network sysctl", sysctls("net.ipv4.tcp_syncookies"), "SysctlForbidden", `forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled`},
		{"slashes", sysctls("net/ipv4/ip_local_port_range"), "SysctlForbidden", `forbidden sysctl: "net.ipv4.ip_local_port_range" not allowed with host net enabled`},
		{"an unsafe sysctl", sysctls("kernel.msgmax"), "SysctlForbidden", `forbidden sysctl: "kernel.msgmax" not allowlisted`},
		{"an IPC sysctl with hostIPC", hostIPC, "SysctlForbidden", `forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host IPC enabled`},
		{"windows", windows, "PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS"},
		{"an NFS volume", nfs, "UnsupportedVolume", `volume "data": nfs volumes are not supported on Satellite nodes`},
	} {
		reason, msg := Admit(tt.pod, false)
		if reason != tt.reason || len(msg) < len(tt.prefix) || msg[:len(tt.prefix)] != tt.prefix {
			t.Errorf("%s: %s %q, want %s %q", tt.name, reason, msg, tt.reason, tt.prefix)
		}
	}
	privileged := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "setup", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}}
	hostPath := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}}}
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"a plain pod", &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(false)}}}}}, ""},
		{"privileged", privileged, `Pod was rejected: it asks for a privileged container ("setup"), which reaches the remote host, and this Satellite node refuses host access (--deny-host-access)`},
		{"hostPath", hostPath, `Pod was rejected: it asks for a hostPath volume ("root": /), which reaches the remote host, and this Satellite node refuses host access (--deny-host-access)`},
		{"hostPID", &corev1.Pod{Spec: corev1.PodSpec{HostPID: true}}, "Pod was rejected: it asks for the host's PID namespace (hostPID), which reaches the remote host, and this Satellite node refuses host access (--deny-host-access)"},
		{"hostIPC", &corev1.Pod{Spec: corev1.PodSpec{HostIPC: true}}, "Pod was rejected: it asks for the host's IPC namespace (hostIPC), which reaches the remote host, and this Satellite node refuses host access (--deny-host-access)"},
	} {
		if reason, msg := Admit(tt.pod, true); msg != tt.want || (msg != "") != (reason == "HostAccessDenied") {
			t.Errorf("%s with --deny-host-access: %s %q, want %q", tt.name, reason, msg, tt.want)
		}
		if reason, _ := Admit(tt.pod, false); reason != "" {
			t.Errorf("%s without --deny-host-access: refused (%s)", tt.name, reason)
		}
	}
	if got := podSysctls(sysctls("kernel/shm_rmid_forced")); got["kernel.shm_rmid_forced"] != "1" {
		t.Errorf("sandbox sysctls %v", got)
	}
	if normalizeSysctl("net/ipv4/conf/eno2.100/rp_filter") != "net.ipv4.conf.eno2/100.rp_filter" {
		t.Errorf("normalizeSysctl of a name with a dot: %q", normalizeSysctl("net/ipv4/conf/eno2.100/rp_filter"))
	}
}
