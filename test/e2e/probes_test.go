package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Probe and lifecycle tests run the same pod on the reference kubelet's node and on the
// Satellite nodes and compare what a user sees: container ready, started and restartCount,
// the pod's conditions, the events, and what the container saw. Their pods listen on ports:
// the two Satellite nodes share the host's network namespace, so each target gets its own.

// portFor is the port a test's pod listens on for the target: base, base+1, base+2.
func portFor(tg target, base int32) int32 {
	switch tg.name {
	case "kubelet":
		return base
	case "containerd2":
		return base + 1
	}
	return base + 2
}

// ctrStatus is the status of the named container, zero when there is none yet.
func ctrStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == name {
			return s
		}
	}
	return corev1.ContainerStatus{}
}

// podCondition is the status of one of the pod's conditions ("" when absent).
func podCondition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func started(s corev1.ContainerStatus) bool { return s.Started != nil && *s.Started }

// events lists the pod's events with the reason.
func (e *env) events(ctx context.Context, ns, pod, reason string) ([]corev1.Event, error) {
	evs, err := e.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=" + reason})
	if err != nil {
		return nil, err
	}
	return evs.Items, nil
}

// waitEvent waits for an event of the pod with the reason and a message that starts with
// prefix, and returns it.
func (e *env) waitEvent(t *testing.T, ns, pod, reason, prefix string, timeout time.Duration) corev1.Event {
	t.Helper()
	var found corev1.Event
	e.waitFor(t, timeout, fmt.Sprintf("event %s %q of pod %s/%s", reason, prefix, ns, pod), func(ctx context.Context) (bool, error) {
		evs, err := e.events(ctx, ns, pod, reason)
		for _, ev := range evs {
			if strings.HasPrefix(ev.Message, prefix) {
				found = ev
				return true, nil
			}
		}
		return false, err
	})
	return found
}

// describeEvent is what a user reads of an event in `kubectl describe`, plus the container
// it is about.
func describeEvent(ev corev1.Event) string {
	return fmt.Sprintf("%s %s %s %q", ev.Type, ev.Reason, ev.InvolvedObject.FieldPath, ev.Message)
}

func execProbe(period, failures int32, cmd ...string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds: period, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: failures}
}

// A readiness exec probe keeps the container and the pod not ready until it first succeeds
// (a file created after 8 s), and makes them not ready again when it fails later, without a
// restart; each failure is an Unhealthy event about the container.
func TestIntegrationProbeReadinessExec(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		pod := tg.pod("readiness", corev1.RestartPolicyAlways, "sleep 8; touch /tmp/ready; exec sleep 3600")
		pod.Spec.Containers[0].ReadinessProbe = execProbe(1, 1, "cat", "/tmp/ready")
		pod = e.createPod(t, ns, pod)
		var out strings.Builder
		p := e.waitPod(t, ns, pod.Name, 90*time.Second, "running and not ready", func(p *corev1.Pod) bool {
			return running(p) && !ctrStatus(p, "main").Ready
		})
		fmt.Fprintf(&out, "before the file: started=%v Ready=%s ContainersReady=%s\n", started(ctrStatus(p, "main")),
			podCondition(p, corev1.PodReady), podCondition(p, corev1.ContainersReady))
		p = e.waitPod(t, ns, pod.Name, 60*time.Second, "ready", func(p *corev1.Pod) bool { return ctrStatus(p, "main").Ready })
		fmt.Fprintf(&out, "with the file: Ready=%s ContainersReady=%s\n", podCondition(p, corev1.PodReady), podCondition(p, corev1.ContainersReady))
		e.mustKubectl(t, "", "-n", ns, "exec", pod.Name, "--", "rm", "/tmp/ready")
		p = e.waitPod(t, ns, pod.Name, 30*time.Second, "not ready again", func(p *corev1.Pod) bool {
			return running(p) && !ctrStatus(p, "main").Ready
		})
		fmt.Fprintf(&out, "file removed: Ready=%s restarts=%d\n", podCondition(p, corev1.PodReady), ctrStatus(p, "main").RestartCount)
		ev := e.waitEvent(t, ns, pod.Name, "Unhealthy", "Readiness probe failed: ", 30*time.Second)
		fmt.Fprintf(&out, "event: %s\n", describeEvent(ev))
		if !strings.Contains(out.String(), "before the file: started=true Ready=False ContainersReady=False") ||
			!strings.Contains(out.String(), "with the file: Ready=True ContainersReady=True") ||
			!strings.Contains(out.String(), "file removed: Ready=False restarts=0") {
			t.Errorf("%s:\n%s", tg.name, out.String())
		}
		e.deletePod(t, ns, pod.Name)
		return out.String()
	})
	compareWithKubelet(t, seen)
}

// A failing liveness exec probe restarts the container: Unhealthy events (two, grouped into
// one with count 2 by the event correlator), a Killing event that says it will be
// restarted, restartCount 1, and the killed instance in lastState.
func TestIntegrationProbeLivenessExec(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		pod := tg.pod("liveness", corev1.RestartPolicyAlways, "touch /tmp/healthy; exec sleep 3600")
		pod.Spec.Containers[0].LivenessProbe = execProbe(1, 2, "cat", "/tmp/healthy")
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
		e.mustKubectl(t, "", "-n", ns, "exec", pod.Name, "--", "rm", "/tmp/healthy")
		p := e.waitPod(t, ns, pod.Name, 90*time.Second, "restarted and running", func(p *corev1.Pod) bool {
			return running(p) && ctrStatus(p, "main").RestartCount >= 1
		})
		var out strings.Builder
		s := ctrStatus(p, "main")
		fmt.Fprintf(&out, "restarts=%d ready=%v\n", s.RestartCount, s.Ready)
		if last := s.LastTerminationState.Terminated; last != nil {
			fmt.Fprintf(&out, "lastState: exitCode=%d reason=%s\n", last.ExitCode, last.Reason)
		}
		// The correlator counts the second failure into the first event, a moment later.
		var unhealthy corev1.Event
		e.waitFor(t, 30*time.Second, "an Unhealthy event counted twice", func(ctx context.Context) (bool, error) {
			unhealthy = e.waitEvent(t, ns, pod.Name, "Unhealthy", "Liveness probe failed: ", 30*time.Second)
			return unhealthy.Count >= 2, nil
		})
		killing := e.waitEvent(t, ns, pod.Name, "Killing", "Container main failed liveness probe", 30*time.Second)
		fmt.Fprintf(&out, "event: %s count>=2=%v\nevent: %s\n", describeEvent(unhealthy), unhealthy.Count >= 2, describeEvent(killing))
		// The new instance is healthy (the file is back): no second restart.
		time.Sleep(5 * time.Second)
		p = e.waitPod(t, ns, pod.Name, 10*time.Second, "running", running)
		fmt.Fprintf(&out, "5 s later: restarts=%d\n", ctrStatus(p, "main").RestartCount)
		for _, want := range []string{"restarts=1 ready=true", "lastState: exitCode=137 reason=Error",
			`Normal Killing spec.containers{main} "Container main failed liveness probe, will be restarted"`, "count>=2=true", "5 s later: restarts=1"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: lacks %q:\n%s", tg.name, want, out.String())
			}
		}
		e.deletePod(t, ns, pod.Name)
		return out.String()
	})
	compareWithKubelet(t, seen)
}

// healthCGI is a CGI script for busybox httpd: it logs each request's method and headers to
// /tmp/requests and answers 200 while /tmp/healthy exists, 500 otherwise.
const healthCGI = `mkdir -p /www/cgi-bin
cat > /www/cgi-bin/health <<'EOF'
#!/bin/sh
echo "$REQUEST_METHOD ua=$HTTP_USER_AGENT accept=$HTTP_ACCEPT x-probe=$HTTP_X_PROBE" >> /tmp/requests
if [ -f /tmp/healthy ]; then printf 'Content-Type: text/plain\n\nok\n'; else printf 'Status: 500 Sick\nContent-Type: text/plain\n\nsick\n'; fi
EOF
chmod +x /www/cgi-bin/health
`

// An httpGet liveness probe against an httpd in the pod, on a named port, reaches it as the
// kubelet's does (GET, User-Agent kube-probe/<major.minor>, Accept */*, the probe's header);
// a 500 fails it, and the container is restarted. The 500 is the only Unhealthy event: no
// instance is probed the moment it starts, before httpd listens.
func TestIntegrationProbeLivenessHTTP(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		port := portFor(tg, 18610)
		pod := tg.pod("liveness-http", corev1.RestartPolicyAlways, healthCGI+fmt.Sprintf("touch /tmp/healthy; exec httpd -f -p %d -h /www", port))
		c := &pod.Spec.Containers[0]
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: port}}
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/cgi-bin/health", Port: intstr.FromString("http"), HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "e2e"}}}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 2}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
		var requests string
		e.waitFor(t, 30*time.Second, "a probe request", func(ctx context.Context) (bool, error) {
			out, err := e.kubectl(ctx, t, "", "-n", ns, "exec", pod.Name, "--", "cat", "/tmp/requests")
			requests = out
			return strings.Contains(out, "\n"), err
		})
		var out strings.Builder
		fmt.Fprintf(&out, "request: %s\n", strings.SplitN(requests, "\n", 2)[0])
		e.mustKubectl(t, "", "-n", ns, "exec", pod.Name, "--", "rm", "/tmp/healthy")
		p := e.waitPod(t, ns, pod.Name, 90*time.Second, "restarted", func(p *corev1.Pod) bool {
			return running(p) && ctrStatus(p, "main").RestartCount >= 1
		})
		fmt.Fprintf(&out, "restarts>=1=%v\n", ctrStatus(p, "main").RestartCount >= 1)
		killing := e.waitEvent(t, ns, pod.Name, "Killing", "Container main failed liveness probe", 30*time.Second)
		// Every Unhealthy event, not only the first: a probe run before httpd listens (the
		// kubelet never probes an instance the moment it starts) is one more, and says so.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		evs, err := e.events(ctx, ns, pod.Name, "Unhealthy")
		if err != nil {
			t.Fatal(err)
		}
		var unhealthy []string
		for _, ev := range evs {
			unhealthy = append(unhealthy, "event: "+describeEvent(ev)+"\n")
		}
		sort.Strings(unhealthy)
		fmt.Fprintf(&out, "%sevent: %s\n", strings.Join(unhealthy, ""), describeEvent(killing))
		if !strings.HasPrefix(out.String(), "request: GET ua=kube-probe/1.") || !strings.Contains(out.String(), " accept=*/* x-probe=e2e\n") {
			t.Errorf("%s: not the kubelet's request:\n%s", tg.name, out.String())
		}
		want := "restarts>=1=true\n" +
			`event: Warning Unhealthy spec.containers{main} "Liveness probe failed: HTTP probe failed with statuscode: 500"` + "\n" +
			`event: Normal Killing spec.containers{main} "Container main failed liveness probe, will be restarted"` + "\n"
		if _, rest, _ := strings.Cut(out.String(), "\n"); rest != want {
			t.Errorf("%s:\n%s\nwant\n%s", tg.name, rest, want)
		}
		e.deletePod(t, ns, pod.Name)
		return out.String()
	})
	compareWithKubelet(t, seen)
}

// A tcpSocket readiness probe keeps the container not ready until something listens on the
// port (an httpd started after 6 s), then ready; the failures are Unhealthy events that say
// the connection was refused (the wording of the cause differs: the kubelet dials itself,
// Satellite through its SSH connection).
func TestIntegrationProbeReadinessTCP(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		port := portFor(tg, 18620)
		pod := tg.pod("readiness-tcp", corev1.RestartPolicyAlways, fmt.Sprintf("sleep 6; exec httpd -f -p %d -h /tmp", port))
		pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
		pod = e.createPod(t, ns, pod)
		var out strings.Builder
		p := e.waitPod(t, ns, pod.Name, 90*time.Second, "running and not ready", func(p *corev1.Pod) bool {
			return running(p) && !ctrStatus(p, "main").Ready
		})
		fmt.Fprintf(&out, "before listening: Ready=%s\n", podCondition(p, corev1.PodReady))
		p = e.waitPod(t, ns, pod.Name, 60*time.Second, "ready", func(p *corev1.Pod) bool { return ctrStatus(p, "main").Ready })
		fmt.Fprintf(&out, "listening: Ready=%s restarts=%d\n", podCondition(p, corev1.PodReady), ctrStatus(p, "main").RestartCount)
		ev := e.waitEvent(t, ns, pod.Name, "Unhealthy", "Readiness probe failed: ", 30*time.Second)
		fmt.Fprintf(&out, "event: %s %s %s refused=%v\n", ev.Type, ev.Reason, ev.InvolvedObject.FieldPath,
			strings.Contains(strings.ToLower(ev.Message), "connection refused"))
		if want := "before listening: Ready=False\nlistening: Ready=True restarts=0\nevent: Warning Unhealthy spec.containers{main} refused=true\n"; out.String() != want {
			t.Errorf("%s:\n%s\nwant\n%s(event message %q)", tg.name, out.String(), want, ev.Message)
		}
		e.deletePod(t, ns, pod.Name)
		return out.String()
	})
	compareWithKubelet(t, seen)
}

// A startup probe gates the others: until it succeeds the container is not started and not
// ready, and its liveness probe (which would fail) does not run; then it is started and
// ready. A startup probe that keeps failing has the container killed and restarted.
func TestIntegrationProbeStartup(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		pod := tg.pod("startup", corev1.RestartPolicyAlways, "sleep 8; touch /tmp/started; exec sleep 3600")
		main := &pod.Spec.Containers[0]
		main.StartupProbe = execProbe(1, 60, "cat", "/tmp/started")
		main.LivenessProbe = execProbe(1, 1, "cat", "/tmp/started")
		main.ReadinessProbe = execProbe(1, 1, "true")
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "stuck", Image: testImage,
			Command: []string{"sh", "-c", "exec sleep 3600"}, StartupProbe: execProbe(1, 2, "false")})
		pod = e.createPod(t, ns, pod)
		var out strings.Builder
		p := e.waitPod(t, ns, pod.Name, 90*time.Second, "main running", func(p *corev1.Pod) bool { return ctrStatus(p, "main").State.Running != nil })
		s := ctrStatus(p, "main")
		fmt.Fprintf(&out, "before the file: started=%v ready=%v\n", started(s), s.Ready)
		p = e.waitPod(t, ns, pod.Name, 60*time.Second, "main started", func(p *corev1.Pod) bool { return started(ctrStatus(p, "main")) })
		p = e.waitPod(t, ns, pod.Name, 30*time.Second, "main ready", func(p *corev1.Pod) bool { return ctrStatus(p, "main").Ready })
		fmt.Fprintf(&out, "with the file: started=true ready=true restarts=%d\n", ctrStatus(p, "main").RestartCount)
		p = e.waitPod(t, ns, pod.Name, 90*time.Second, "stuck restarted", func(p *corev1.Pod) bool { return ctrStatus(p, "stuck").RestartCount >= 1 })
		fmt.Fprintf(&out, "stuck: restarted=%v Ready=%s\n", ctrStatus(p, "stuck").RestartCount >= 1, podCondition(p, corev1.PodReady))
		failed := e.waitEvent(t, ns, pod.Name, "Unhealthy", "Startup probe failed: cat", 30*time.Second)
		killing := e.waitEvent(t, ns, pod.Name, "Killing", "Container stuck failed startup probe", 30*time.Second)
		fmt.Fprintf(&out, "event: %s\nevent: %s\n", describeEvent(failed), describeEvent(killing))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		evs, err := e.events(ctx, ns, pod.Name, "Unhealthy")
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if strings.HasPrefix(ev.Message, "Liveness") {
				fmt.Fprintf(&out, "liveness ran before startup: %s\n", describeEvent(ev))
			}
		}
		for _, want := range []string{"before the file: started=false ready=false", "with the file: started=true ready=true restarts=0",
			"stuck: restarted=true Ready=False", `Normal Killing spec.containers{stuck} "Container stuck failed startup probe, will be restarted"`} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: lacks %q:\n%s", tg.name, want, out.String())
			}
		}
		if strings.Contains(out.String(), "liveness ran") {
			t.Errorf("%s: %s", tg.name, out.String())
		}
		e.deletePod(t, ns, pod.Name)
		return out.String()
	})
	compareWithKubelet(t, seen)
}
