package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A volume Satellite cannot serve fails the pod at admission, as the kubelet fails a pod it
// cannot admit: phase Failed, a reason, a message naming the volume and why, a Warning event,
// and nothing created on the host.
func TestIntegrationUnsupportedVolumeRejected(t *testing.T) {
	forEachTarget(t, func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		pod := tg.pod("claims", corev1.RestartPolicyAlways, "sleep 3600")
		// An NFS share: the scheduler places the pod (a missing claim would keep it Pending).
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			NFS: &corev1.NFSVolumeSource{Server: "198.51.100.7", Path: "/exports/training"}}}}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		pod = e.createPod(t, ns, pod)
		got := e.waitPod(t, ns, pod.Name, 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if got.Status.Reason != "UnsupportedVolume" || !strings.Contains(got.Status.Message, `volume "data"`) ||
			!strings.Contains(got.Status.Message, "nfs volumes are not supported") {
			t.Errorf("status reason %q message %q: want UnsupportedVolume naming volume \"data\" and nfs", got.Status.Reason, got.Status.Message)
		}
		e.waitFor(t, 30*time.Second, "a Warning event UnsupportedVolume", func(ctx context.Context) (bool, error) {
			evs, err := e.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=claims,reason=UnsupportedVolume"})
			return err == nil && len(evs.Items) > 0 && evs.Items[0].Type == corev1.EventTypeWarning, err
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if left, err := h.leftovers(ctx, ns, pod.Name, pod.UID); err != nil || len(left) > 0 {
			t.Errorf("a rejected pod has things on the host: %v %v", left, err)
		}
		e.deletePod(t, ns, pod.Name)
	})
}

// A pod that is not hostNetwork may set network sysctls on a kubelet's node, where it has a
// network namespace of its own; on a Satellite node every pod is in the host's network, so
// the kubelet's rule for hostNetwork pods applies: the pod fails at admission with the
// kubelet's reason SysctlForbidden and message, and nothing reaches the host.
func TestIntegrationNetworkSysctlRejected(t *testing.T) {
	forEachTarget(t, func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		pod := tg.pod("sysctl", corev1.RestartPolicyAlways, "sleep 3600")
		pod.Spec.HostNetwork = false
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}}}
		pod = e.createPod(t, ns, pod)
		got := e.waitPod(t, ns, pod.Name, 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		want := `Pod was rejected: forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled`
		if got.Status.Reason != "SysctlForbidden" || got.Status.Message != want {
			t.Errorf("status %s %q, want SysctlForbidden %q", got.Status.Reason, got.Status.Message, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if left, err := h.leftovers(ctx, ns, pod.Name, pod.UID); err != nil || len(left) > 0 {
			t.Errorf("a rejected pod has things on the host: %v %v", left, err)
		}
		e.deletePod(t, ns, pod.Name)
	})
}
