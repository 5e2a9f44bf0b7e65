package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// logScript writes a log with everything kubectl logs has options for: stdout and stderr, a
// line written in two parts, a line longer than the runtime's 16 KiB buffer (split into
// partial CRI lines), and a last line written after a pause, for --since-time.
const logScript = `echo one; sleep 0.2; echo two >&2; sleep 0.2; printf 'partial-'; sleep 0.2; echo joined;
awk 'BEGIN { s = ""; for (i = 0; i < 20000; i++) s = s "x"; print "long:" s ":end" }';
sleep 2; echo three; exec sleep 3600`

// kubectl logs options give the same output on Satellite as on the kubelet.
func TestIntegrationLogOptions(t *testing.T) {
	e := loadEnv(t)
	var mu sync.Mutex
	seen := map[string]map[string]string{} // target -> case -> output
	long := "long:" + strings.Repeat("x", 20000) + ":end\n"
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := e.createPod(t, ns, tg.pod("opts", corev1.RestartPolicyAlways, logScript))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		e.waitFor(t, 20*time.Second, "the whole log", func(ctx context.Context) (bool, error) {
			out, err := e.kubectl(ctx, t, "", "logs", "-n", ns, pod.Name)
			return strings.HasSuffix(out, "three\n"), err
		})
		ts := e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--timestamps")
		stamp := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z) `)
		var threeAt string
		for _, line := range strings.Split(strings.TrimSuffix(ts, "\n"), "\n") {
			m := stamp.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("--timestamps line without an RFC 3339 timestamp: %.80q", line)
				continue
			}
			if strings.HasSuffix(line, " three") {
				threeAt = m[1]
			}
		}
		if threeAt == "" {
			t.Fatalf("no timestamped 'three' in %.200q", ts)
		}
		out := map[string]string{
			"all":         e.mustKubectl(t, "", "logs", "-n", ns, pod.Name),
			"tail=2":      e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--tail=2"),
			"limit=6":     e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--limit-bytes=6"),
			"since-time":  e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--since-time="+threeAt),
			"since=1h":    e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--since=1h"),
			"container=c": e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "-c", "main"),
		}
		want := map[string]string{
			"all": "one\ntwo\npartial-joined\n" + long + "three\n",
			// --tail counts lines of the CRI file, as the kubelet does: the 20 KB line was
			// written as a 16 KiB partial line and the rest, so its rest is one line.
			"tail=2":      long[16<<10:] + "three\n",
			"limit=6":     "one\ntw",
			"since-time":  "three\n",
			"since=1h":    "one\ntwo\npartial-joined\n" + long + "three\n",
			"container=c": "one\ntwo\npartial-joined\n" + long + "three\n",
		}
		for k, w := range want {
			if out[k] != w {
				t.Errorf("logs %s = %.120q (%d bytes), want %.120q (%d bytes)", k, out[k], len(out[k]), w, len(w))
			}
		}
		mu.Lock()
		seen[tg.name] = out
		mu.Unlock()
	})
	for name, out := range seen {
		for k, v := range out {
			if ref, ok := seen["kubelet"][k]; ok && v != ref {
				t.Errorf("logs %s on %s differs from the kubelet's: %.80q vs %.80q", k, name, v, ref)
			}
		}
	}
}

// --previous shows the instance before a restart, --all-containers every container.
func TestIntegrationLogsPreviousAndAllContainers(t *testing.T) {
	e := loadEnv(t)
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := tg.pod("crash", corev1.RestartPolicyAlways, `echo "run $(cat /proc/sys/kernel/random/uuid)"; sleep 1; exit 1`)
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "side", Image: testImage, Command: []string{"sh", "-c", "echo from-side; exec sleep 3600"}})
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 60*time.Second, "a restart", func(p *corev1.Pod) bool {
			for _, c := range p.Status.ContainerStatuses {
				if c.Name == "main" && c.RestartCount >= 1 && c.LastTerminationState.Terminated != nil {
					return true
				}
			}
			return false
		})
		var prev, cur string
		e.waitFor(t, 20*time.Second, "current and previous logs", func(ctx context.Context) (bool, error) {
			var err1, err2 error
			prev, err1 = e.kubectl(ctx, t, "", "logs", "-n", ns, pod.Name, "-c", "main", "--previous")
			cur, err2 = e.kubectl(ctx, t, "", "logs", "-n", ns, pod.Name, "-c", "main")
			return strings.HasPrefix(prev, "run ") && strings.HasPrefix(cur, "run "), joinErr(err1, err2)
		})
		if prev == cur {
			t.Errorf("--previous shows the current instance: %q", prev)
		}
		all := e.mustKubectl(t, "", "logs", "-n", ns, pod.Name, "--all-containers", "--prefix")
		if !strings.Contains(all, "[pod/crash/side] from-side") || !strings.Contains(all, "[pod/crash/main] run ") {
			t.Errorf("--all-containers --prefix = %q", all)
		}
		e.deletePod(t, ns, pod.Name)
	})
}

func joinErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// A follower reads every line, in order, across a rotation of the log file (10 MiB, as the
// kubelet rotates), and ends when the container ends.
func TestIntegrationLogsFollowAcrossRotation(t *testing.T) {
	e := loadEnv(t)
	const lines = 130000 // about 11 MB: more than one 10 MiB file
	script := fmt.Sprintf(`while [ ! -e /tmp/go ]; do sleep 0.1; done
awk 'BEGIN { for (i = 1; i <= %d; i++) printf "line %%08d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", i }'
sleep 25; echo after-rotation; sleep 1`, lines)
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := e.createPod(t, ns, tg.pod("rotate", corev1.RestartPolicyNever, script))
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		f := e.follow(ctx, t, "logs", "-f", "-n", ns, pod.Name)
		e.mustKubectl(t, "", "exec", "-n", ns, pod.Name, "--", "touch", "/tmp/go")
		next, after := 1, false
		for line := range f.lines {
			switch {
			case strings.HasPrefix(line, "line "):
				var n int
				if _, err := fmt.Sscanf(line, "line %d", &n); err != nil || n != next {
					t.Fatalf("line %q out of order: want line %d", line, next)
				}
				next++
			case line == "after-rotation":
				after = true
			default:
				t.Errorf("unexpected line %.80q", line)
			}
		}
		if err := f.wait(); err != nil {
			t.Errorf("logs -f: %v", err)
		}
		if next != lines+1 || !after {
			t.Errorf("follower saw %d of %d lines, after-rotation %v", next-1, lines, after)
		}
		e.deletePod(t, ns, pod.Name)
	})
}
