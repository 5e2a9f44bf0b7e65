package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// A postStart hook runs right after the container starts, and the container is reported
// running only once the hook has finished: by then the container has seen the file the hook
// wrote (the hook then sleeps 3 s), and no hook failure is reported.
func TestIntegrationLifecyclePostStart(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		pod := tg.pod("poststart", corev1.RestartPolicyAlways,
			`while [ ! -f /tmp/hook ]; do sleep 0.1; done; echo "saw $(cat /tmp/hook)"; exec sleep 3600`)
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"sh", "-c", "echo from-poststart > /tmp/hook; sleep 3"}}}}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
		// Read at once: the hook's 3 s have passed only if running waited for it.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		logs, err := e.kubectl(ctx, t, "", "-n", ns, "logs", pod.Name)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := e.events(ctx, ns, pod.Name, "FailedPostStartHook")
		if err != nil {
			t.Fatal(err)
		}
		out := fmt.Sprintf("logs when first running: %q\nFailedPostStartHook events: %d\n", logs, len(evs))
		if want := "logs when first running: \"saw from-poststart\\n\"\nFailedPostStartHook events: 0\n"; out != want {
			t.Errorf("%s:\n%s\nwant\n%s", tg.name, out, want)
		}
		e.deletePod(t, ns, pod.Name)
		return out
	})
	compareWithKubelet(t, seen)
}

// A postStart hook that fails: the Warning event FailedPostStartHook (without the hook's
// output), the container killed with the Killing event "FailedPostStartHook", and started
// again as the restart policy says; while it waits, its reason is PostStartHookError (with the
// kubelet's message) or, once in back-off, CrashLoopBackOff.
func TestIntegrationLifecyclePostStartFailure(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		pod := tg.pod("poststart-fail", corev1.RestartPolicyAlways, "exec sleep 3600")
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"sh", "-c", "echo oops; exit 3"}}}}
		pod = e.createPod(t, ns, pod)
		var waitingMessage string
		reasons := map[string]bool{}
		p := e.waitPod(t, ns, pod.Name, 120*time.Second, "restarted after the hook failed", func(p *corev1.Pod) bool {
			s := ctrStatus(p, "main")
			if w := s.State.Waiting; w != nil {
				reasons[w.Reason] = true
				if w.Reason == "PostStartHookError" {
					waitingMessage = w.Message
				}
			}
			return s.RestartCount >= 1
		})
		failed := e.waitEvent(t, ns, pod.Name, "FailedPostStartHook", "", 30*time.Second)
		killing := e.waitEvent(t, ns, pod.Name, "Killing", "FailedPostStartHook", 30*time.Second)
		out := fmt.Sprintf("restarted=%v\nevent: %s\nevent: %s\n", ctrStatus(p, "main").RestartCount >= 1, describeEvent(failed), describeEvent(killing))
		want := "restarted=true\n" +
			`event: Warning FailedPostStartHook spec.containers{main} "PostStartHook failed"` + "\n" +
			`event: Normal Killing spec.containers{main} "FailedPostStartHook"` + "\n"
		if out != want {
			t.Errorf("%s:\n%s\nwant\n%s", tg.name, out, want)
		}
		// The reason is seen only between the kill and the next start: compared when caught.
		if waitingMessage != "" {
			msg := strings.NewReplacer(ns, "<ns>", string(pod.UID), "<uid>").Replace(waitingMessage)
			wantMsg := `Exec lifecycle hook ([sh -c echo oops; exit 3]) for Container "main" in Pod "poststart-fail_<ns>(<uid>)" failed - error: command 'sh -c echo oops; exit 3' exited with 3: , message: "oops\n"`
			if msg != wantMsg {
				t.Errorf("%s: PostStartHookError message\n%s\nwant\n%s", tg.name, msg, wantMsg)
			}
		}
		for r := range reasons {
			if r != "PostStartHookError" && r != "CrashLoopBackOff" && r != "ContainerCreating" {
				t.Errorf("%s: container waited with reason %q", tg.name, r)
			}
		}
		e.deletePod(t, ns, pod.Name)
		return out
	})
	compareWithKubelet(t, seen)
}

// stopCGI is a CGI script for busybox httpd that records a preStop hook's request in the
// hostPath volume.
const stopCGI = `mkdir -p /www/cgi-bin
cat > /www/cgi-bin/stop <<'EOF'
#!/bin/sh
echo "prestop-http $REQUEST_METHOD ua=$HTTP_USER_AGENT" >> /hostdir/http.log
printf 'Content-Type: text/plain\n\nbye\n'
EOF
chmod +x /www/cgi-bin/stop
`

var lifecycleVersion = regexp.MustCompile(`kube-lifecycle/1\.[0-9]+`)

// preStop hooks run on deletion before the container gets SIGTERM, within the grace period:
// an exec hook, an httpGet hook (sent as the kubelet sends it, User-Agent
// kube-lifecycle/<major.minor>), a sleep hook that delays SIGTERM by its seconds, and a
// failing hook, which gives the Warning event FailedPreStopHook (the only one). Each
// container's TERM trap and hook write to a hostPath directory, read after the pod is gone.
//
// The httpGet hook names its host, 127.0.0.1 (the node's loopback: the pods are in the node's
// network on every target). Without a host, the kubelet fails the hook of a hostNetwork pod
// (FailedPreStopHook, "failed to find networking container" in its log;
// kubernetes/kubernetes#134285): it aims at the pod's IP as the runtime reports it, and
// containerd reports none for a sandbox in the node's network. Satellite deliberately differs
// (docs/pod-spec.md): its pods are all in the host's network, hostNetwork or not, and it sends
// such a hook to the host's address, as the kubelet sends it to the IP of a pod with its own.
func TestIntegrationLifecyclePreStop(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		dir, err := os.MkdirTemp("", "satellite-prestop-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		port := portFor(tg, 18630)
		loop := "while true; do sleep 0.2; done"
		pod := tg.pod("prestop", corev1.RestartPolicyAlways, "")
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](20)
		dirOrCreate := corev1.HostPathDirectoryOrCreate
		pod.Spec.Volumes = []corev1.Volume{{Name: "hostdir", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirOrCreate}}}}
		mount := []corev1.VolumeMount{{Name: "hostdir", MountPath: "/hostdir"}}
		ctr := func(name, script string, preStop corev1.LifecycleHandler) corev1.Container {
			return corev1.Container{Name: name, Image: testImage, Command: []string{"sh", "-c", script}, VolumeMounts: mount,
				Lifecycle: &corev1.Lifecycle{PreStop: &preStop}}
		}
		pod.Spec.Containers = []corev1.Container{
			ctr("exec-hook", "trap 'echo term-exec >> /hostdir/exec.log; exit 0' TERM; "+loop,
				corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop-exec >> /hostdir/exec.log; sleep 1"}}}),
			ctr("http-hook", stopCGI+fmt.Sprintf("httpd -f -p %d -h /www & trap 'echo term-http >> /hostdir/http.log; exit 0' TERM; ", port)+loop,
				corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/cgi-bin/stop", Port: intstr.FromInt32(port)}}),
			ctr("sleep-hook", `trap 'echo "term-sleep $(date +%s)" >> /hostdir/sleep.log; exit 0' TERM; `+loop,
				corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 3}}),
			ctr("failing-hook", "trap 'exit 0' TERM; "+loop,
				corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo hook-secret; exit 7"}}}),
		}
		// Ready once httpd listens, so that the httpGet hook finds it.
		pod.Spec.Containers[1].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "Ready", func(p *corev1.Pod) bool { return podCondition(p, corev1.PodReady) == corev1.ConditionTrue })
		h := e.host(t, tg)
		deleted := time.Now().Unix()
		e.deletePod(t, ns, pod.Name)
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			return string(b)
		}
		// The API may drop the pod a moment before the last container has written its line.
		e.waitFor(t, 30*time.Second, "every container's TERM line", func(context.Context) (bool, error) {
			return strings.Contains(read("exec.log"), "term-exec") && strings.Contains(read("http.log"), "term-http") &&
				strings.Contains(read("sleep.log"), "term-sleep"), nil
		})
		var out strings.Builder
		fmt.Fprintf(&out, "exec.log: %q\nhttp.log: %q\n", read("exec.log"), read("http.log"))
		term, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(read("sleep.log"), "term-sleep")), 10, 64)
		fmt.Fprintf(&out, "sleep hook delayed SIGTERM by 2 s or more: %v\n", term-deleted >= 2)
		// Every FailedPreStopHook event, not only the first: a hook that should have run and
		// did not is one more.
		e.waitEvent(t, ns, pod.Name, "FailedPreStopHook", "", 30*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		failed, err := e.events(ctx, ns, pod.Name, "FailedPreStopHook")
		if err != nil {
			t.Fatal(err)
		}
		var descs []string
		for _, ev := range failed {
			descs = append(descs, "event: "+describeEvent(ev)+"\n")
		}
		sort.Strings(descs)
		out.WriteString(strings.Join(descs, ""))
		want := "exec.log: \"prestop-exec\\nterm-exec\\n\"\n" +
			"http.log: \"prestop-http GET ua=kube-lifecycle/<version>\\nterm-http\\n\"\n" +
			"sleep hook delayed SIGTERM by 2 s or more: true\n" +
			`event: Warning FailedPreStopHook spec.containers{failing-hook} "PreStopHook failed"` + "\n"
		if got := lifecycleVersion.ReplaceAllString(out.String(), "kube-lifecycle/<version>"); got != want {
			t.Errorf("%s:\n%s\nwant\n%s", tg.name, got, want)
		}
		e.assertClean(t, h, ns, pod.Name, pod.UID)
		return out.String() // the versions too: the kubelet's and Satellite's must agree
	})
	compareWithKubelet(t, seen)
}

// A pod deleted while its init container runs: the init container gets SIGTERM (its trap
// writes to a host directory) and the pod goes, its regular container never started, and the
// host keeps nothing of it; as on the kubelet's node.
func TestIntegrationDeleteDuringInit(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		h := e.host(t, tg)
		dir := t.TempDir()
		pod := tg.pod("init-deleted", corev1.RestartPolicyAlways, "echo main-started >> /hostdir/log; exec sleep 3600")
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](10)
		dirOrCreate := corev1.HostPathDirectoryOrCreate
		pod.Spec.Volumes = []corev1.Volume{{Name: "hostdir", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirOrCreate}}}}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "hostdir", MountPath: "/hostdir"}}
		pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: testImage,
			Command:      []string{"sh", "-c", "trap 'echo setup-term >> /hostdir/log; exit 0' TERM; echo setup-started >> /hostdir/log; while true; do sleep 0.2; done"},
			VolumeMounts: []corev1.VolumeMount{{Name: "hostdir", MountPath: "/hostdir"}}}}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 60*time.Second, "its init container running", func(p *corev1.Pod) bool {
			return len(p.Status.InitContainerStatuses) == 1 && p.Status.InitContainerStatuses[0].State.Running != nil
		})
		e.waitFor(t, 10*time.Second, "the init container's first line", func(context.Context) (bool, error) {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			return strings.Contains(string(b), "setup-started"), nil
		})
		start := time.Now()
		e.deletePod(t, ns, pod.Name)
		took := time.Since(start)
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Logf("%s: deleted during init in %s; the containers wrote %q", tg.name, took.Round(100*time.Millisecond), b)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
		return string(b)
	})
	if want := "setup-started\nsetup-term\n"; seen["kubelet"] != want {
		t.Errorf("on the kubelet's node the containers wrote %q, want %q", seen["kubelet"], want)
	}
	compareWithKubelet(t, seen)
}

// A pod with two sidecars deleted: the regular container gets SIGTERM first, then the sidecars,
// last declared first, each once the ones after it have stopped (the kubelet's termination
// ordering); the trap of each writes to a host directory. As on the kubelet's node.
func TestIntegrationDeleteWithSidecars(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		h := e.host(t, tg)
		dir := t.TempDir()
		mounts := []corev1.VolumeMount{{Name: "hostdir", MountPath: "/hostdir"}}
		loop := func(name string) []string {
			return []string{"sh", "-c", "trap 'sleep 1; echo " + name + "-term >> /hostdir/log; exit 0' TERM; while true; do sleep 0.2; done"}
		}
		always := corev1.ContainerRestartPolicyAlways
		pod := tg.pod("sidecars-deleted", corev1.RestartPolicyAlways, "")
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](20)
		dirOrCreate := corev1.HostPathDirectoryOrCreate
		pod.Spec.Volumes = []corev1.Volume{{Name: "hostdir", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirOrCreate}}}}
		pod.Spec.Containers[0].Command, pod.Spec.Containers[0].VolumeMounts = loop("main"), mounts
		pod.Spec.InitContainers = []corev1.Container{
			{Name: "first", Image: testImage, Command: loop("first"), VolumeMounts: mounts, RestartPolicy: &always},
			{Name: "second", Image: testImage, Command: loop("second"), VolumeMounts: mounts, RestartPolicy: &always},
		}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
		e.deletePod(t, ns, pod.Name)
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Logf("%s: the containers wrote %q", tg.name, b)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
		return string(b)
	})
	if want := "main-term\nsecond-term\nfirst-term\n"; seen["kubelet"] != want {
		t.Errorf("on the kubelet's node the containers wrote %q, want %q", seen["kubelet"], want)
	}
	compareWithKubelet(t, seen)
}
