package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// kubectl shows the kubelet's own errors for logs and exec that cannot be served.
func TestIntegrationStreamErrors(t *testing.T) {
	e := loadEnv(t)
	var mu sync.Mutex
	seen := map[string]map[string]string{}
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := tg.pod("errs", corev1.RestartPolicyAlways, "exec sleep 3600")
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "bad", Image: "localhost/satellite/does-not-exist:1"})
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 60*time.Second, "main running, bad failing to pull", func(p *corev1.Pod) bool {
			ok := 0
			for _, c := range p.Status.ContainerStatuses {
				if c.Name == "main" && c.State.Running != nil || c.Name == "bad" && c.State.Waiting != nil && c.State.Waiting.Reason == "ImagePullBackOff" {
					ok++
				}
			}
			return ok == 2
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cases := map[string][]string{
			"previous":    {"logs", "-n", ns, pod.Name, "-c", "main", "--previous"},
			"waiting":     {"logs", "-n", ns, pod.Name, "-c", "bad"},
			"exec-bad":    {"exec", "-n", ns, pod.Name, "-c", "bad", "--", "true"},
			"attach-bad":  {"attach", "-n", ns, pod.Name, "-c", "bad"},
			"unknown-ctr": {"logs", "-n", ns, pod.Name, "-c", "nope"},
		}
		got := map[string]string{}
		for name, args := range cases {
			_, err := e.kubectl(ctx, t, "", args...)
			if err == nil {
				t.Errorf("%s: kubectl succeeded", name)
				continue
			}
			msg := err.Error()
			if i := strings.Index(msg, ": exit status 1: "); i >= 0 {
				msg = msg[i+len(": exit status 1: "):]
			}
			got[name] = strings.TrimSpace(strings.ReplaceAll(msg, ns, "NS"))
		}
		want := map[string]string{
			"previous": `Error from server (BadRequest): previous terminated container "main" in pod "errs" not found`,
			"waiting":  `Error from server (BadRequest): container "bad" in pod "errs" is waiting to start: trying and failing to pull image`,
			"exec-bad": `error: Internal error occurred: unable to upgrade connection: container not found ("bad")`,
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: kubectl said %q, want %q", k, got[k], w)
			}
		}
		mu.Lock()
		seen[tg.name] = got
		mu.Unlock()
		e.deletePod(t, ns, pod.Name)
	})
	for name, got := range seen {
		for k, v := range got {
			if ref, ok := seen["kubelet"][k]; ok && v != ref {
				t.Errorf("%s on %s: %q, the kubelet says %q", k, name, v, ref)
			}
		}
	}
}
