package e2e

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Predicates on the pod the cases wait for.

func phaseIs(phase corev1.PodPhase) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return p.Status.Phase == phase }
}

func waitingIs(container, reason string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		s := ctrStatus(p, container)
		return s.State.Waiting != nil && s.State.Waiting.Reason == reason
	}
}

// crashLooping: the container has been restarted twice and is in its back-off, between runs.
func crashLooping(container string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		s := ctrStatus(p, container)
		return s.RestartCount >= 2 && s.LastTerminationState.Terminated != nil && s.State.Running == nil
	}
}

// backOffState is why a crash-looping container's state differs.
const backOffState = "the kubelet 1.35 reports the exited container's terminated state for most of the back-off, and CrashLoopBackOff only from its sync at the back-off's end (it requeues the pod for then); Satellite reports waiting CrashLoopBackOff, with the kubelet's message, for the whole back-off, which says why the container is not running"

// restartedOnceRunning: the container's second instance runs and is ready.
func restartedOnceRunning(container string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		s := ctrStatus(p, container)
		return s.RestartCount == 1 && s.State.Running != nil && s.Ready
	}
}

// readyIs: the main container runs, and it and the pod are ready, or not.
func readyIs(ready bool) func(*corev1.Pod) bool {
	want := corev1.ConditionFalse
	if ready {
		want = corev1.ConditionTrue
	}
	return func(p *corev1.Pod) bool {
		s := ctrStatus(p, "main")
		return s.State.Running != nil && s.Ready == ready && podCondition(p, corev1.PodReady) == want
	}
}

// firstReadinessProbe is why a server that listens a moment after its container starts may
// get one Unhealthy event on Satellite and none under the kubelet.
const firstReadinessProbe = "Satellite probes readiness the moment it has started the container, so that the pod is Ready as soon as it can be; the kubelet's first probe comes with its next relist, up to a second later, by which time the server listens"

// firstStartupProbe is why a container whose startup probe succeeds a few seconds after it
// starts may get an Unhealthy event on one node and none on the other.
const firstStartupProbe = "whether a startup probe finds the container not yet started depends on when its first probe runs: Satellite's at once, the kubelet's with its next relist, up to a second later and later still on a loaded machine; either node may see it fail once or not at all"

// Pod parts the cases share.

func emptyDir(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}

func mount(name, path string) corev1.VolumeMount {
	return corev1.VolumeMount{Name: name, MountPath: path}
}

// withData gives the main container an emptyDir at /data, which outlives its restarts.
func withData(p *corev1.Pod) {
	p.Spec.Volumes = append(p.Spec.Volumes, emptyDir("data"))
	p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, mount("data", "/data"))
}

// sidecar is an init container with restartPolicy Always.
func sidecar(name, script string) corev1.Container {
	c := busybox(name, script)
	c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	return c
}

// initStatus is the status of the named init container, zero when there is none yet.
func initStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == name {
			return s
		}
	}
	return corev1.ContainerStatus{}
}

func busybox(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: testImage, Command: []string{"sh", "-c", script}}
}

func configMapRef(key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "diff-config"}, Key: key, Optional: ptr.To(optional)}}
}

func sh(script string) *corev1.ExecAction {
	return &corev1.ExecAction{Command: []string{"sh", "-c", script}}
}

func probe(h corev1.ProbeHandler, period, failures int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: h, PeriodSeconds: period, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: failures}
}

func private(image string, policy corev1.PullPolicy, secrets ...string) func(*corev1.Pod, diffFixture) {
	return func(p *corev1.Pod, fx diffFixture) {
		p.Spec.Containers[0].Image = fx.e.vars["REGISTRY"] + "/satellite/" + image
		p.Spec.Containers[0].ImagePullPolicy = policy
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
	}
}

// pulledWithSecret is a pre pod: it pulls the private image with the pull secret.
func pulledWithSecret(fx diffFixture) *corev1.Pod {
	p := fx.tg.pod("pre-pull", corev1.RestartPolicyNever, "true")
	private("private:1.0", corev1.PullAlways, "pull")(p, fx)
	return p
}

// diffCases are the differential suite's cases.
func diffCases(e *env, t *testing.T) []diffCase {
	hostPathRoot := t.TempDir()
	onceThenOK := "if [ -f /data/once ]; then echo second; exit 0; fi; touch /data/once; echo first; exit 1"
	return []diffCase{
		// Exit codes and reasons.
		{name: "exit-0", script: "echo done", logs: true},
		{name: "exit-1", script: "echo failing >&2; exit 1", logs: true},
		{name: "exit-42", script: "exit 42"},
		{name: "killed-by-sigkill", script: "sleep 60 & pid=$!; kill -9 $pid; wait $pid"},
		{name: "command-and-args-expanded", logs: true, edit: func(p *corev1.Pod, _ diffFixture) {
			c := &p.Spec.Containers[0]
			c.Env = []corev1.EnvVar{{Name: "GREETING", Value: "hi"}}
			c.Command = []string{"sh", "-c", `echo "$1|$2|$3|$$"`, "$(GREETING)", "$(GREETING)", "$$(GREETING)", "$(UNSET)"}
		}},
		{name: "oom-killed", script: "head -c 200m /dev/zero | tail", edit: func(p *corev1.Pod, _ diffFixture) {
			q := resource.MustParse("24Mi")
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: q}, Requests: corev1.ResourceList{corev1.ResourceMemory: q}}
		}},
		{name: "command-not-found", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].Command = []string{"/no/such/binary"}
		}, differs: map[string]string{"containerd1.6/message main": "containerd 1.6 ends runc's message with \": unknown\"; the reference kubelet runs on containerd 2.2"}},
		{name: "working-dir-command-args", logs: true, edit: func(p *corev1.Pod, _ diffFixture) {
			c := &p.Spec.Containers[0]
			c.WorkingDir, c.Command, c.Args = "/tmp", []string{"sh", "-c"}, []string{`pwd; echo "$0 $1"`, "first", "second"}
		}},

		// Restart policies and back-off.
		{name: "on-failure-restarts-until-success", policy: corev1.RestartPolicyOnFailure, script: onceThenOK, logs: true,
			edit: func(p *corev1.Pod, _ diffFixture) { withData(p) }, until: phaseIs(corev1.PodSucceeded)},
		{name: "always-crash-loop-back-off", policy: corev1.RestartPolicyAlways, script: "echo crash; exit 3",
			until: crashLooping("main"), events: []string{"BackOff"}, differs: map[string]string{"container main": backOffState}},
		{name: "always-restarts-a-completed-container", policy: corev1.RestartPolicyAlways, script: "exit 0",
			until: crashLooping("main"), events: []string{"BackOff"}, differs: map[string]string{"container main": backOffState}},
		{name: "never-does-not-restart", script: "exit 7", until: phaseIs(corev1.PodFailed)},

		// Several containers, init containers.
		{name: "two-containers", policy: corev1.RestartPolicyAlways, script: "echo from-main; exec sleep 3600", logs: true,
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Containers = append(p.Spec.Containers, busybox("side", "echo from-side; exec sleep 3600"))
			},
			until: func(p *corev1.Pod) bool { return running(p) && len(p.Status.ContainerStatuses) == 2 }},
		{name: "init-containers-in-order", script: "cat /data/order", logs: true, edit: func(p *corev1.Pod, _ diffFixture) {
			withData(p)
			for _, n := range []string{"first", "second"} {
				c := busybox(n, "echo "+n+" >> /data/order")
				c.VolumeMounts = []corev1.VolumeMount{mount("data", "/data")}
				p.Spec.InitContainers = append(p.Spec.InitContainers, c)
			}
		}},
		{name: "init-container-fails-pod-never", script: "echo never", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.InitContainers = []corev1.Container{busybox("setup", "exit 2")}
		}, until: phaseIs(corev1.PodFailed)},
		{name: "init-container-retried-on-failure", policy: corev1.RestartPolicyOnFailure, script: "echo main-ran", logs: true,
			edit: func(p *corev1.Pod, _ diffFixture) {
				withData(p)
				c := busybox("setup", "if [ -f /data/tried ]; then exit 0; fi; touch /data/tried; exit 1")
				c.VolumeMounts = []corev1.VolumeMount{mount("data", "/data")}
				p.Spec.InitContainers = []corev1.Container{c}
			}, until: phaseIs(corev1.PodSucceeded)},

		// Sidecars: init containers with restartPolicy Always.
		{name: "sidecar-beside-main", logs: true, script: "sleep 2; echo main-done", events: []string{"Killing"},
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.InitContainers = []corev1.Container{sidecar("proxy", "echo proxy-up; trap 'echo proxy-term; exit 0' TERM; while true; do sleep 0.2; done")}
			}, until: phaseIs(corev1.PodSucceeded)},
		{name: "sidecar-started-before-next-init", logs: true, script: "cat /data/seen",
			edit: func(p *corev1.Pod, _ diffFixture) {
				withData(p)
				proxy := sidecar("proxy", "sleep 2; touch /data/ready; trap 'exit 0' TERM; while true; do sleep 0.2; done")
				proxy.VolumeMounts = []corev1.VolumeMount{mount("data", "/data")}
				proxy.StartupProbe = probe(corev1.ProbeHandler{Exec: sh("test -f /data/ready")}, 1, 30)
				after := busybox("after", "test -f /data/ready && echo the-sidecar-had-started > /data/seen")
				after.VolumeMounts = []corev1.VolumeMount{mount("data", "/data")}
				p.Spec.InitContainers = []corev1.Container{proxy, after}
			}, until: phaseIs(corev1.PodSucceeded), differs: map[string]string{"event Warning Unhealthy": firstStartupProbe}},
		{name: "sidecar-restarted-when-it-exits", policy: corev1.RestartPolicyNever, script: "exec sleep 3600",
			edit: func(p *corev1.Pod, _ diffFixture) {
				withData(p)
				proxy := sidecar("proxy", "if [ -f /data/once ]; then exec sleep 3600; fi; touch /data/once; sleep 1; exit 1")
				proxy.VolumeMounts = []corev1.VolumeMount{mount("data", "/data")}
				p.Spec.InitContainers = []corev1.Container{proxy}
			}, until: func(p *corev1.Pod) bool {
				s := initStatus(p, "proxy")
				return s.RestartCount == 1 && s.State.Running != nil && running(p)
			}},
		{name: "sidecar-not-ready-holds-the-pod", policy: corev1.RestartPolicyAlways, script: "exec sleep 3600", events: []string{"Unhealthy"},
			edit: func(p *corev1.Pod, _ diffFixture) {
				proxy := sidecar("proxy", "exec sleep 3600")
				proxy.ReadinessProbe = probe(corev1.ProbeHandler{Exec: sh("exit 1")}, 1, 1)
				p.Spec.InitContainers = []corev1.Container{proxy}
			}, until: func(p *corev1.Pod) bool {
				return running(p) && initStatus(p, "proxy").State.Running != nil && podCondition(p, corev1.PodReady) == corev1.ConditionFalse
			}},

		// Termination messages.
		{name: "termination-message", script: "printf 'all good' > /dev/termination-log"},
		{name: "termination-message-path", script: "printf 'custom path' > /tmp/message; exit 3", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].TerminationMessagePath = "/tmp/message"
		}},
		{name: "termination-message-from-log", script: "echo last words; exit 1", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		}},

		// Probes.
		{name: "readiness-exec-fails", policy: corev1.RestartPolicyAlways, script: "exec sleep 3600", events: []string{"Unhealthy"},
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Containers[0].ReadinessProbe = probe(corev1.ProbeHandler{Exec: sh("exit 1")}, 1, 1)
			}, until: readyIs(false)},
		{name: "readiness-exec-succeeds", policy: corev1.RestartPolicyAlways, script: "exec sleep 3600",
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Containers[0].ReadinessProbe = probe(corev1.ProbeHandler{Exec: sh("true")}, 1, 1)
			}, until: readyIs(true)},
		{name: "liveness-exec-restarts", policy: corev1.RestartPolicyAlways, events: []string{"Killing", "Unhealthy"},
			script: "if [ -f /data/started ]; then touch /data/alive; fi; touch /data/started; exec sleep 3600",
			edit: func(p *corev1.Pod, _ diffFixture) {
				withData(p)
				p.Spec.Containers[0].LivenessProbe = probe(corev1.ProbeHandler{Exec: sh("test -f /data/alive")}, 1, 1)
			}, until: restartedOnceRunning("main")},
		{name: "startup-probe-gates-readiness", policy: corev1.RestartPolicyAlways, script: "sleep 3; touch /tmp/up; exec sleep 3600",
			edit: func(p *corev1.Pod, _ diffFixture) {
				c := &p.Spec.Containers[0]
				c.StartupProbe = probe(corev1.ProbeHandler{Exec: sh("test -f /tmp/up")}, 1, 30)
				c.ReadinessProbe = probe(corev1.ProbeHandler{Exec: sh("true")}, 1, 1)
			}, until: readyIs(true), differs: map[string]string{"event Warning Unhealthy": firstStartupProbe}},
		{name: "startup-probe-fails-restarts", policy: corev1.RestartPolicyAlways, events: []string{"Killing", "Unhealthy"},
			script: "if [ -f /data/started ]; then touch /data/up; fi; touch /data/started; exec sleep 3600",
			edit: func(p *corev1.Pod, _ diffFixture) {
				withData(p)
				p.Spec.Containers[0].StartupProbe = probe(corev1.ProbeHandler{Exec: sh("test -f /data/up")}, 1, 2)
			}, until: restartedOnceRunning("main")},
		{name: "readiness-http", policy: corev1.RestartPolicyAlways,
			script: `mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p "$PORT" -h /tmp/www`,
			edit: func(p *corev1.Pod, fx diffFixture) {
				c := &p.Spec.Containers[0]
				c.Env = []corev1.EnvVar{{Name: "PORT", Value: strconv.Itoa(int(fx.port))}}
				c.ReadinessProbe = probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt32(fx.port)}}, 1, 1)
			}, until: readyIs(true), differs: map[string]string{"event Warning Unhealthy": firstReadinessProbe}},
		{name: "readiness-http-not-found", policy: corev1.RestartPolicyAlways, events: []string{"Unhealthy"},
			script: `mkdir -p /tmp/www && exec httpd -f -p "$PORT" -h /tmp/www`,
			edit: func(p *corev1.Pod, fx diffFixture) {
				c := &p.Spec.Containers[0]
				c.Env = []corev1.EnvVar{{Name: "PORT", Value: strconv.Itoa(int(fx.port))}}
				c.ReadinessProbe = probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/missing", Port: intstr.FromInt32(fx.port)}}, 1, 1)
			}, until: readyIs(false)},
		{name: "liveness-tcp-refused-restarts", policy: corev1.RestartPolicyAlways, events: []string{"Killing", "Unhealthy"},
			script: `if [ -f /data/started ]; then mkdir -p /tmp/www; exec httpd -f -p "$PORT" -h /tmp/www; fi; touch /data/started; exec sleep 3600`,
			edit: func(p *corev1.Pod, fx diffFixture) {
				withData(p)
				c := &p.Spec.Containers[0]
				c.Env = []corev1.EnvVar{{Name: "PORT", Value: strconv.Itoa(int(fx.port))}}
				c.LivenessProbe = probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(fx.port)}}, 1, 2)
			}, until: restartedOnceRunning("main")},

		{name: "readiness-gate", policy: corev1.RestartPolicyAlways, script: "exec sleep 3600",
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "satellite.dev/gate"}}
			},
			until: func(p *corev1.Pod) bool {
				return running(p) && podCondition(p, corev1.ContainersReady) == corev1.ConditionTrue
			},
			then: func(fx diffFixture, p *corev1.Pod) error {
				patch := `{"status":{"conditions":[{"type":"satellite.dev/gate","status":"True","reason":"LoadBalancerReady"}]}}`
				_, err := fx.e.client.CoreV1().Pods(fx.ns).Patch(context.Background(), p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
				return err
			},
			after: func(p *corev1.Pod) bool { return podCondition(p, corev1.PodReady) == corev1.ConditionTrue }},

		// Lifecycle hooks.
		{name: "post-start-exec", script: "sleep 2; cat /tmp/hook", logs: true, edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: sh("echo hooked > /tmp/hook")}}
		}},
		{name: "post-start-fails-once", policy: corev1.RestartPolicyAlways, script: "exec sleep 3600", events: []string{"FailedPostStartHook"},
			edit: func(p *corev1.Pod, _ diffFixture) {
				withData(p)
				p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
					Exec: sh("test -f /data/hooked && exit 0; touch /data/hooked; exit 1")}}
			}, until: restartedOnceRunning("main")},

		// Environment.
		{name: "env-literals-and-expansion", logs: true, script: `echo "A=$A B=$B C=$C D=$D"`, edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "one"}, {Name: "B", Value: "$(A)-two"},
				{Name: "C", Value: "$$(A)"}, {Name: "D", Value: "$(UNDEFINED)"}}
		}},
		{name: "env-from-configmap-with-prefix", logs: true, script: `echo "$CFG_greeting $CFG_count"`, edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_",
				ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "diff-config"}}}}
		}},
		{name: "env-secret-and-configmap-keys", logs: true, script: `echo "$TOKEN $GREETING"`, edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GREETING", ValueFrom: configMapRef("greeting", false)},
				{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "diff-secret"}, Key: "token"}}}}
		}},
		{name: "env-optional-key-missing", logs: true, script: `echo "[${MISSING-unset}]"`, edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MISSING", ValueFrom: configMapRef("no-such-key", true)}}
		}},
		{name: "env-required-key-missing", policy: corev1.RestartPolicyAlways, script: "true", events: []string{"Failed"},
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MISSING", ValueFrom: configMapRef("no-such-key", false)}}
			}, until: waitingIs("main", "CreateContainerConfigError")},
		{name: "env-downward-api", logs: true, script: `echo "$NAME $NS $APP $SA"`, edit: func(p *corev1.Pod, _ diffFixture) {
			p.Labels = map[string]string{"app": "diff"}
			field := func(f string) *corev1.EnvVarSource {
				return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: f}}
			}
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NAME", ValueFrom: field("metadata.name")}, {Name: "NS", ValueFrom: field("metadata.namespace")},
				{Name: "APP", ValueFrom: field("metadata.labels['app']")}, {Name: "SA", ValueFrom: field("spec.serviceAccountName")}}
		}},
		{name: "env-resource-fields", logs: true, script: `echo "$MEM $CPU"`, edit: func(p *corev1.Pod, _ diffFixture) {
			c := &p.Spec.Containers[0]
			c.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("48Mi"), corev1.ResourceCPU: resource.MustParse("300m")}}
			c.Env = []corev1.EnvVar{
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
				{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}}}
		}},

		// Volumes.
		{name: "configmap-volume-items-and-mode", logs: true, script: "ls /cfg; cat /cfg/sub/file; stat -L -c '%a' /cfg/sub/file",
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "diff-config"},
					Items:                []corev1.KeyToPath{{Key: "file.txt", Path: "sub/file", Mode: ptr.To[int32](0o400)}}}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount("cfg", "/cfg")}
			}},
		{name: "secret-volume-default-mode", logs: true, script: "ls /sec; cat /sec/token; echo; stat -L -c '%a' /sec/token",
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Volumes = []corev1.Volume{{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "diff-secret", DefaultMode: ptr.To[int32](0o440)}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount("sec", "/sec")}
			}},
		{name: "downward-api-volume", logs: true, script: "cat /info/labels; echo; cat /info/name", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Labels = map[string]string{"app": "diff", "tier": "gpu"}
			p.Spec.Volumes = []corev1.Volume{{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount("info", "/info")}
		}},
		{name: "projected-volume", logs: true, script: "ls /all; cat /all/greeting /all/user /all/name", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Volumes = []corev1.Volume{{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "diff-config"}, Items: []corev1.KeyToPath{{Key: "greeting", Path: "greeting"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "diff-secret"}, Items: []corev1.KeyToPath{{Key: "user", Path: "user"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
			}}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount("all", "/all")}
		}},
		{name: "empty-dir-memory", logs: true, script: `awk '$2 == "/cache" {print $3}' /proc/mounts; df -k /cache | awk 'NR == 2 {print $2}'`,
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("16Mi"))}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount("cache", "/cache")}
			}},
		{name: "subpath-of-configmap", logs: true, script: "cat /etc/greeting; echo", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "diff-config"}}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/greeting", SubPath: "greeting"}}
		}},
		{name: "read-only-mount", logs: true, script: "touch /ro/x 2>/dev/null && echo wrote || echo refused", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Volumes = []corev1.Volume{emptyDir("ro")}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "ro", MountPath: "/ro", ReadOnly: true}}
		}},
		{name: "host-path-directory-or-create", logs: true, script: "stat -c '%F %a' /host; touch /host/made && echo ok",
			edit: func(p *corev1.Pod, fx diffFixture) {
				dir := filepath.Join(hostPathRoot, fx.tg.name, "made")
				p.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
					Path: dir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount("host", "/host")}
			}},
		{name: "host-path-file-missing", script: "true", events: []string{"FailedMount"}, edit: func(p *corev1.Pod, fx diffFixture) {
			p.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: filepath.Join(hostPathRoot, fx.tg.name, "absent"), Type: ptr.To(corev1.HostPathFile)}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{mount("host", "/host")}
		}, until: phaseIs(corev1.PodPending), differs: map[string]string{"conditions": "Satellite creates the pod's sandbox while it sets up the volumes, to start pods sooner, so PodReadyToStartContainers is True while a volume fails; the kubelet creates the sandbox only once the volumes are mounted"}},

		// Security context.
		{name: "run-as-user-and-groups", logs: true, script: "id", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1234), RunAsGroup: ptr.To[int64](5678), SupplementalGroups: []int64{42}}
		}},
		{name: "fs-group-on-volumes", logs: true, script: "id; stat -c '%g %a' /data; touch /data/f; stat -c '%g' /data/f", edit: func(p *corev1.Pod, _ diffFixture) {
			withData(p)
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), FSGroup: ptr.To[int64](2000)}
		}},
		{name: "read-only-root-filesystem", logs: true, script: "touch /x 2>/dev/null && echo wrote || echo refused; touch /tmp/x 2>/dev/null && echo tmp-wrote || echo tmp-refused",
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
			}},
		{name: "capabilities-drop-all-add-one", logs: true, script: "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
				Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}}}
		}},
		{name: "no-new-privileges", logs: true, script: "grep NoNewPrivs /proc/self/status", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)}
		}},
		{name: "privileged", logs: true, script: "grep -E '^Cap(Eff|Bnd)' /proc/self/status; grep NoNewPrivs /proc/self/status", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}},
		{name: "run-as-non-root-refused", policy: corev1.RestartPolicyAlways, script: "true", events: []string{"Failed"},
			edit: func(p *corev1.Pod, _ diffFixture) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
			}, until: waitingIs("main", "CreateContainerConfigError")},

		// Images and pull secrets, against the registry on the host.
		{name: "pull-with-secret", logs: true, script: "echo pulled", edit: private("private:1.0", corev1.PullAlways, "pull")},
		{name: "pull-with-dockercfg-secret", logs: true, script: "echo pulled", edit: private("private:1.0", corev1.PullAlways, "pull-dockercfg")},
		{name: "pull-without-secret", policy: corev1.RestartPolicyAlways, script: "true", events: []string{"Failed", "BackOff"},
			edit: private("private:1.0", corev1.PullAlways), until: waitingIs("main", "ImagePullBackOff")},
		{name: "pull-with-wrong-password", policy: corev1.RestartPolicyAlways, script: "true", events: []string{"Failed", "BackOff"},
			edit: private("private:1.0", corev1.PullAlways, "pull-wrong"), until: waitingIs("main", "ImagePullBackOff")},
		{name: "pull-secret-missing", logs: true, script: "echo pulled", events: []string{"FailedToRetrieveImagePullSecret"},
			edit: private("private:1.0", corev1.PullAlways, "no-such-secret", "pull")},
		{name: "pull-image-not-in-registry", policy: corev1.RestartPolicyAlways, script: "true", events: []string{"Failed", "BackOff"},
			edit: private("absent:1.0", corev1.PullIfNotPresent, "pull"), until: waitingIs("main", "ImagePullBackOff")},
		{name: "present-image-needs-its-secret", policy: corev1.RestartPolicyAlways, script: "true", pre: pulledWithSecret,
			events: []string{"Failed", "BackOff"}, edit: private("private:1.0", corev1.PullIfNotPresent), until: waitingIs("main", "ImagePullBackOff")},
		{name: "present-image-with-its-secret", logs: true, script: "echo present", pre: pulledWithSecret,
			edit: private("private:1.0", corev1.PullIfNotPresent, "pull")},
		{name: "never-pull-absent-image", policy: corev1.RestartPolicyAlways, script: "true", events: []string{"ErrImageNeverPull"},
			edit: private("never-pulled:1.0", corev1.PullNever), until: waitingIs("main", "ErrImageNeverPull")},

		// DNS and /etc/hosts.
		{name: "dns-policy-none", logs: true, script: "cat /etc/resolv.conf", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.DNSPolicy = corev1.DNSNone
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.53"}, Searches: []string{"svc.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}}
		}},
		{name: "host-aliases", logs: true, script: "sed -n '/HostAliases/,$p' /etc/hosts", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"model.internal", "weights.internal"}}}
		}},

		// Namespaces, sysctls and what the kubelet refuses at admission.
		{name: "host-ipc", logs: true, script: "readlink /proc/self/ns/ipc", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.HostIPC = true
		}},
		{name: "safe-ipc-sysctl", logs: true, script: "cat /proc/sys/kernel/shm_rmid_forced", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}}}
		}},
		{name: "unsafe-sysctl-refused", script: "true", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}}}
		}, until: phaseIs(corev1.PodFailed)},

		// The pod as a whole.
		{name: "active-deadline-exceeded", script: "exec sleep 60", events: []string{"DeadlineExceeded"}, edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.ActiveDeadlineSeconds = ptr.To[int64](3)
		}, until: phaseIs(corev1.PodFailed)},
		{name: "share-process-namespace", logs: true, script: "sleep 2; ps -o comm > /tmp/ps; sort -u /tmp/ps", edit: func(p *corev1.Pod, _ diffFixture) {
			p.Spec.ShareProcessNamespace = ptr.To(true)
			p.Spec.Containers = append(p.Spec.Containers, busybox("side", "exec sleep 3600"))
		}, until: func(p *corev1.Pod) bool {
			s := ctrStatus(p, "main")
			return s.State.Terminated != nil
		}},
		{name: "exec-in-running-pod", policy: corev1.RestartPolicyAlways, script: "echo ready > /tmp/state; exec sleep 3600",
			exec: []string{"sh", "-c", "cat /tmp/state; id -u; pwd"}, until: running},
	}
}
