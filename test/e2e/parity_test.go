package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Differential tests of kubelet behaviours (issue 3): the same pod on the reference kubelet's
// node and on the Satellite nodes, compared field by field.

// observations collects what each target saw, by target and by item, for the comparison
// with the reference kubelet's node once all targets are done.
type observations struct {
	mu   sync.Mutex
	seen map[string]map[string]string
}

func (o *observations) add(target, item, value string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[string]map[string]string{}
	}
	if o.seen[target] == nil {
		o.seen[target] = map[string]string{}
	}
	o.seen[target][item] = value
}

// compare fails the test for every item a Satellite node saw otherwise than the kubelet's.
func (o *observations) compare(t *testing.T) {
	t.Helper()
	ref := o.seen["kubelet"]
	if ref == nil {
		t.Error("nothing seen on the reference kubelet's node")
		return
	}
	var names []string
	for name := range o.seen {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for item, want := range ref {
			if got, ok := o.seen[name][item]; !ok || got != want {
				t.Errorf("%s: %s on %s:\n%s\non the kubelet's node:\n%s", item, name, name, got, want)
			}
		}
	}
}

// anonymous replaces what differs between targets by construction: the pod's namespace and
// UID (the kubelet's format.Pod names both).
func anonymous(pod *corev1.Pod, s string) string {
	s = strings.ReplaceAll(s, string(pod.UID), "<uid>")
	return strings.ReplaceAll(s, pod.Namespace, "<ns>")
}

// Termination messages: read from the file at terminationMessagePath (default or not, written
// by root or not), the last 4096 bytes of it, with FallbackToLogsOnError the log's last 80
// lines when a failed container left the file empty, and a fresh file for each instance.
// The status holds at most 12 KiB of messages a pod: each is cut to its first 12288/n bytes,
// n the pod's containers (the kubelet's status manager, normalizeStatus), 1755 in the pod of
// seven, so a long message's last 4096 bytes are seen whole only in the pod of two. lastState
// is the previous instance while the next one runs; once that one has exited too, the kubelet
// has removed the previous one (it keeps one dead instance a container) and lastState is gone.
func TestIntegrationParityTerminationMessage(t *testing.T) {
	e := loadEnv(t)
	var obs observations
	// What the file holds: its first bytes are not among its last 4096.
	const longScript = `printf START > /dev/termination-log; awk 'BEGIN { for (i = 0; i < 5000; i++) printf "x" }' >> /dev/termination-log; printf END >> /dev/termination-log`
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		fallback := corev1.TerminationMessageFallbackToLogsOnError
		pod := tg.pod("messages", corev1.RestartPolicyNever, "")
		c := func(name, script string) corev1.Container {
			return corev1.Container{Name: name, Image: testImage, Command: []string{"sh", "-c", script}}
		}
		pod.Spec.Containers = []corev1.Container{
			c("file", "printf 'from the file' > /dev/termination-log"),
			c("custom-path", "echo custom > /tmp/why; exit 3"),
			c("fallback-logs", "for i in $(seq 1 100); do echo line $i; done; exit 1"),
			c("fallback-success", "echo fine"),
			c("fallback-file-wins", "echo from the log; printf 'from the file' > /dev/termination-log; exit 1"),
			c("long", longScript),
			c("non-root", "echo written by $(id -u) > /dev/termination-log"),
		}
		pod.Spec.Containers[1].TerminationMessagePath = "/tmp/why"
		for _, i := range []int{2, 3, 4} {
			pod.Spec.Containers[i].TerminationMessagePolicy = fallback
		}
		pod.Spec.Containers[6].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
		pod = e.createPod(t, ns, pod)
		got := e.waitPod(t, ns, pod.Name, 90*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		var lines []string
		for i := 1; i <= 100; i++ {
			lines = append(lines, fmt.Sprintf("line %d", i))
		}
		want := map[string]string{
			"file": "from the file", "custom-path": "custom\n", "fallback-logs": strings.Join(lines[20:], "\n") + "\n",
			"fallback-success": "", "fallback-file-wins": "from the file", "long": strings.Repeat("x", 12288/7),
			"non-root": "written by 1000\n",
		}
		for _, ctr := range pod.Spec.Containers {
			cs := ctrStatus(got, ctr.Name)
			if cs.State.Terminated == nil {
				t.Errorf("%s: container %s not terminated: %+v", tg.name, ctr.Name, cs.State)
				continue
			}
			msg := cs.State.Terminated.Message
			obs.add(tg.name, ctr.Name, fmt.Sprintf("exit %d %s: %q", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason, msg))
			if msg != want[ctr.Name] {
				t.Errorf("%s: %s: message %q, want %q", tg.name, ctr.Name, msg, want[ctr.Name])
			}
		}
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)

		// A restart gets a new, empty file: the second instance says nothing, while the first
		// one's message is in lastState until the second has exited too. Beside it, a long
		// message whole: two containers leave it 6144 bytes.
		again := tg.pod("restarted", corev1.RestartPolicyOnFailure,
			"if [ -e /state/ran ]; then while [ ! -e /state/go ]; do sleep 0.1; done; exit 0; fi; touch /state/ran; echo first > /dev/termination-log; exit 1")
		again.Spec.Volumes = []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		again.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "state", MountPath: "/state"}}
		again.Spec.Containers = append(again.Spec.Containers, c("long", longScript))
		again = e.createPod(t, ns, again)
		describe := func(cs corev1.ContainerStatus) string {
			state, last := "<none>", "<none>"
			switch {
			case cs.State.Running != nil:
				state = "running"
			case cs.State.Terminated != nil:
				state = fmt.Sprintf("exit %d %q", cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
			}
			if lt := cs.LastTerminationState.Terminated; lt != nil {
				last = fmt.Sprintf("exit %d %q", lt.ExitCode, lt.Message)
			}
			return fmt.Sprintf("restarts %d, now %s, last %s", cs.RestartCount, state, last)
		}
		got = e.waitPod(t, ns, again.Name, 90*time.Second, "second instance running", func(p *corev1.Pod) bool {
			cs := ctrStatus(p, "main")
			return cs.RestartCount == 1 && cs.State.Running != nil
		})
		second := describe(ctrStatus(got, "main"))
		e.mustKubectl(t, "", "-n", ns, "exec", again.Name, "-c", "main", "--", "touch", "/state/go")
		got = e.waitPod(t, ns, again.Name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		ended := describe(ctrStatus(got, "main"))
		obs.add(tg.name, "restarted", "while the second runs: "+second+"\nonce it has exited: "+ended)
		if want := `restarts 1, now running, last exit 1 "first\n"`; second != want {
			t.Errorf("%s: while the second instance runs: %s; want %s", tg.name, second, want)
		}
		if want := `restarts 1, now exit 0 "", last <none>`; ended != want {
			t.Errorf("%s: once it has exited: %s; want %s", tg.name, ended, want)
		}
		longMsg := ""
		if st := ctrStatus(got, "long").State.Terminated; st != nil {
			longMsg = st.Message
		}
		obs.add(tg.name, "long, one of two", fmt.Sprintf("%q", longMsg))
		if want := strings.Repeat("x", 4093) + "END"; longMsg != want {
			t.Errorf("%s: long message in a pod of two: %q, want the file's last 4096 bytes %q", tg.name, longMsg, want)
		}
		e.deletePod(t, ns, again.Name)
		e.assertClean(t, h, ns, again.Name, again.UID)
	})
	obs.compare(t)
}

// runAsNonRoot: a container whose image runs as root is refused with the kubelet's
// CreateContainerConfigError and message, as is an explicit runAsUser 0; a non-root runAsUser
// runs.
func TestIntegrationParityRunAsNonRoot(t *testing.T) {
	e := loadEnv(t)
	var obs observations
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		pod := tg.pod("nonroot", corev1.RestartPolicyNever, "")
		nonRoot := func(name string, user *int64) corev1.Container {
			return corev1.Container{Name: name, Image: testImage, Command: []string{"sh", "-c", "id -u"},
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: user}}
		}
		pod.Spec.Containers = []corev1.Container{nonRoot("image-root", nil), nonRoot("explicit-root", ptr.To[int64](0)), nonRoot("allowed", ptr.To[int64](1000))}
		pod = e.createPod(t, ns, pod)
		refused := func(cs corev1.ContainerStatus) bool {
			return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
		}
		got := e.waitPod(t, ns, pod.Name, 90*time.Second, "allowed done, the others refused", func(p *corev1.Pod) bool {
			a := ctrStatus(p, "allowed")
			r1 := ctrStatus(p, "image-root")
			r2 := ctrStatus(p, "explicit-root")
			return a.State.Terminated != nil && refused(r1) && refused(r2)
		})
		a := ctrStatus(got, "allowed")
		if a.State.Terminated.ExitCode != 0 {
			t.Errorf("%s: the non-root container exited %d", tg.name, a.State.Terminated.ExitCode)
		}
		if out := e.mustKubectl(t, "", "-n", ns, "logs", pod.Name, "-c", "allowed"); out != "1000\n" {
			t.Errorf("%s: the non-root container ran as %q", tg.name, out)
		}
		who := fmt.Sprintf(`(pod: "nonroot_%s(%s)"`, ns, pod.UID)
		want := map[string]string{
			"image-root":    "container has runAsNonRoot and image will run as root " + who + ", container: image-root)",
			"explicit-root": "container's runAsUser breaks non-root policy " + who + ", container: explicit-root)",
		}
		for name, w := range want {
			cs := ctrStatus(got, name)
			obs.add(tg.name, name, anonymous(pod, cs.State.Waiting.Message))
			if cs.State.Waiting.Message != w {
				t.Errorf("%s: %s waits with %q, want %q", tg.name, name, cs.State.Waiting.Message, w)
			}
		}
		for _, w := range want {
			if ev := e.waitEvent(t, ns, pod.Name, "Failed", "Error: "+w, 60*time.Second); ev.Type != corev1.EventTypeWarning {
				t.Errorf("%s: %s", tg.name, describeEvent(ev))
			}
		}
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
	obs.compare(t)
}

// activeDeadlineSeconds: the pod fails with reason DeadlineExceeded, its container is
// stopped (SIGTERM, ignored by sleep as PID 1, then SIGKILL after the grace period) and never
// started again.
func TestIntegrationParityActiveDeadline(t *testing.T) {
	e := loadEnv(t)
	var obs observations
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		pod := tg.pod("deadline", corev1.RestartPolicyAlways, "exec sleep 3600")
		pod.Spec.ActiveDeadlineSeconds = ptr.To[int64](8)
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 60*time.Second, "running", running)
		got := e.waitPod(t, ns, pod.Name, 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if d := got.Status.StartTime; d != nil {
			t.Logf("%s: failed %v after its start", tg.name, time.Since(d.Time).Round(time.Second))
		}
		time.Sleep(5 * time.Second) // long enough for a restart, were there one
		got = e.waitPod(t, ns, pod.Name, 30*time.Second, "container terminated", func(p *corev1.Pod) bool {
			cs := ctrStatus(p, "main")
			return cs.State.Terminated != nil
		})
		cs := ctrStatus(got, "main")
		summary := fmt.Sprintf("phase %s reason %s message %q; main: exit %d %s, restarts %d, ready %v",
			got.Status.Phase, got.Status.Reason, got.Status.Message, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason, cs.RestartCount, cs.Ready)
		obs.add(tg.name, "status", summary)
		if got.Status.Reason != "DeadlineExceeded" || got.Status.Message != "Pod was active on the node longer than the specified deadline" ||
			cs.RestartCount != 0 || cs.Ready {
			t.Errorf("%s: %s", tg.name, summary)
		}
		ev := e.waitEvent(t, ns, pod.Name, "DeadlineExceeded", "", 60*time.Second)
		obs.add(tg.name, "event", describeEvent(ev))
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
	obs.compare(t)
}
