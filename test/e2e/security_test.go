package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Security contexts reach the container as under the kubelet: a privileged container runs
// with every capability, a restricted one with what it was given and no_new_privs, as the
// user and groups asked for.
func TestIntegrationSecurityContext(t *testing.T) {
	e := loadEnv(t)
	var mu sync.Mutex
	seen := map[string]string{}
	differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := tg.pod("secctx", corev1.RestartPolicyNever, "true")
		script := `echo "$(id -u):$(id -g) $(id -G)"; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr '\t' ' '; (touch /rootfs-write) 2>/dev/null && echo rw || echo ro`
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{SupplementalGroups: []int64{3000}}
		pod.Spec.Containers = []corev1.Container{
			{Name: "default", Image: testImage, Command: []string{"sh", "-c", script}},
			{Name: "privileged", Image: testImage, Command: []string{"sh", "-c", script},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}},
			{Name: "restricted", Image: testImage, Command: []string{"sh", "-c", script},
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000),
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}}}},
		}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		var out strings.Builder
		caps := map[string]string{}
		for _, c := range []string{"default", "privileged", "restricted"} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			o, err := e.kubectl(ctx, t, "", "-n", ns, "logs", pod.Name, "-c", c)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			out.WriteString(c + ": " + strings.ReplaceAll(strings.TrimSpace(o), "\n", " | ") + "\n")
			if i := strings.Index(o, "CapEff:"); i >= 0 {
				caps[c] = strings.Fields(o[i+len("CapEff:"):])[0]
			}
		}
		mu.Lock()
		seen[tg.name] = out.String()
		mu.Unlock()
		// A non-root user's effective set is empty whatever it may add (no ambient capabilities).
		if caps["privileged"] == "" || caps["privileged"] == caps["default"] {
			t.Errorf("%s: privileged capabilities %q, default %q: want more than the default", tg.name, caps["privileged"], caps["default"])
		}
		for _, want := range []string{"restricted: 1000:1000 1000 3000 | CapEff: 0000000000000000 | NoNewPrivs: 1 | ro",
			"privileged: 0:0 0 3000 | CapEff: " + caps["privileged"] + " | NoNewPrivs: 0 | rw", "default: 0:0 0 3000"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: lacks %q:\n%s", tg.name, want, out.String())
			}
		}
		e.deletePod(t, ns, pod.Name)
	})
	if ref := seen["kubelet"]; ref != "" {
		for name, out := range seen {
			if out != ref {
				t.Errorf("%s saw\n%s\nthe kubelet's node\n%s", name, out, ref)
			}
		}
	}
}
