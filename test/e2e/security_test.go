package e2e

import (
	"context"
	"fmt"
	"strconv"
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
	seen, defaultCaps := map[string]string{}, map[string]string{}
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
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
		seen[tg.name], defaultCaps[tg.name] = out.String(), caps["default"]
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
	// By design, a container on a Satellite node has the kubelet's default capabilities less
	// NET_RAW (TestIntegrationNetRaw); everything else is the kubelet's.
	if ref := seen["kubelet"]; ref != "" {
		kubeletCaps, err := strconv.ParseUint(defaultCaps["kubelet"], 16, 64)
		if err != nil || kubeletCaps&capNetRaw == 0 {
			t.Fatalf("the kubelet's default container has CapEff %q: want NET_RAW in it", defaultCaps["kubelet"])
		}
		lessNetRaw := fmt.Sprintf("%016x", kubeletCaps&^capNetRaw)
		for name, out := range seen {
			if name != "kubelet" {
				out = strings.Replace(out, "CapEff: "+lessNetRaw+" ", "CapEff: "+defaultCaps["kubelet"]+" ", 1)
			}
			if out != ref {
				t.Errorf("%s saw\n%s\nthe kubelet's node\n%s\n(NET_RAW, %s less, is expected by design)", name, seen[name], ref, lessNetRaw)
			}
		}
	}
}

// capNetRaw is CAP_NET_RAW's bit in /proc/<pid>/status's capability sets.
const capNetRaw = 1 << 13

// TestIntegrationNetRaw: every pod on a Satellite node is in the host's network namespace, so
// a container gets no NET_RAW unless it adds it: a baseline pod can open neither a raw nor a
// packet socket there, one that adds NET_RAW can. The reference kubelet's hostNetwork pod
// keeps containerd's default NET_RAW, which is the difference by design.
func TestIntegrationNetRaw(t *testing.T) {
	e := loadEnv(t)
	const denied = "raw=operation not permitted packet=operation not permitted"
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := tg.pod("netraw", corev1.RestartPolicyNever, "true")
		image := e.get(t, "INCLUSTER_IMAGE")
		probe := func(name string, sc *corev1.SecurityContext) corev1.Container {
			return corev1.Container{Name: name, Image: image, Command: []string{"/bin/incluster", "sockets"}, SecurityContext: sc}
		}
		pod.Spec.Containers = []corev1.Container{
			probe("baseline", nil),
			probe("adds-net-raw", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}}}),
			probe("drops-all", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}),
		}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		want := map[string]string{"baseline": denied, "adds-net-raw": "raw=ok packet=ok", "drops-all": denied}
		if tg.reference {
			want["baseline"] = "raw=ok packet=ok"
		}
		for c, w := range want {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := e.kubectl(ctx, t, "", "-n", ns, "logs", pod.Name, "-c", c)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(out); got != w {
				t.Errorf("%s: container %s printed %q, want %q", tg.name, c, got, w)
			}
		}
		e.deletePod(t, ns, pod.Name)
	})
}
