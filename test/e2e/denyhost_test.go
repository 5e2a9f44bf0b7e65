package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// assertChartNodeGuards checks, on the node the chart installed with denyHostAccess: true,
// that each pod that reaches the host is refused at admission with reason HostAccessDenied,
// and that the image's subPath helper serves a subPath mount.
func (e *env) assertChartNodeGuards(t *testing.T, ns, node string) {
	t.Helper()
	placed := func(name string, edit func(*corev1.Pod)) *corev1.Pod {
		grace := int64(1)
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				NodeSelector:                  map[string]string{"satellite.dev/host": "local"},
				Tolerations:                   []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpEqual, Value: "satellite", Effect: corev1.TaintEffectNoSchedule}},
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: &grace,
				Containers:                    []corev1.Container{{Name: "main", Image: testImage, Command: []string{"sh", "-c", "cat /sub/f 2>/dev/null; echo ran"}}},
			},
		}
		edit(p)
		return e.createPod(t, ns, p)
	}
	cases := map[string]func(*corev1.Pod){
		"privileged": func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		},
		"hostpath": func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "root", MountPath: "/host"}}
		},
		"hostpid": func(p *corev1.Pod) { p.Spec.HostPID = true },
		"hostipc": func(p *corev1.Pod) { p.Spec.HostIPC = true },
	}
	for name, edit := range cases {
		pod := placed("deny-"+name, edit)
		got := e.waitPod(t, ns, pod.Name, 60*time.Second, "refused at admission", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if got.Status.Reason != "HostAccessDenied" || !strings.Contains(got.Status.Message, "--deny-host-access") {
			t.Errorf("%s pod on %s: reason %q, message %q; want HostAccessDenied", name, node, got.Status.Reason, got.Status.Message)
		}
		e.deletePod(t, ns, pod.Name)
	}
	// A subPath, through the helper the image carries beside the binary.
	pod := placed("subpath", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{emptyDir("d")}
		in := busybox("plant", "mkdir /d/x && echo through-the-helper > /d/x/f")
		in.VolumeMounts = []corev1.VolumeMount{mount("d", "/d")}
		p.Spec.InitContainers = []corev1.Container{in}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "d", MountPath: "/sub", SubPath: "x"}}
	})
	e.waitPod(t, ns, pod.Name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := e.kubectl(ctx, t, "", "-n", ns, "logs", pod.Name); err != nil || out != "through-the-helper\nran\n" {
		t.Errorf("subPath pod on the chart's node printed %q, %v", out, err)
	}
	e.deletePod(t, ns, pod.Name)
}
