package status

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pods with sidecars (restartable init containers), as the kubelet's getPhase sees them.
func TestPodPhaseWithSidecars(t *testing.T) {
	t.Parallel()
	const (
		running = runtimeapi.ContainerState_CONTAINER_RUNNING
		exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	)
	always := corev1.ContainerRestartPolicyAlways
	withSidecar := func(policy corev1.RestartPolicy, startup bool) *corev1.Pod {
		p := testPod(policy, []string{"proxy", "setup"}, "main")
		p.Spec.InitContainers[0].RestartPolicy = &always
		if startup {
			p.Spec.InitContainers[0].StartupProbe = &corev1.Probe{}
		}
		return p
	}
	type hist = map[string][]*runtimeapi.ContainerStatus
	tests := []struct {
		name         string
		pod          *corev1.Pod
		ctrs         hist
		health       map[string]Health
		phase        corev1.PodPhase
		initialized  corev1.ConditionStatus
		ready        corev1.ConditionStatus
		readyMessage string
	}{
		{name: "sidecar not started yet", pod: withSidecar(corev1.RestartPolicyNever, true),
			ctrs:   hist{"proxy": {ctr("proxy", 0, running, 0)}},
			health: map[string]Health{"proxy": {ID: "proxy-a", Started: false}},
			phase:  corev1.PodPending, initialized: corev1.ConditionFalse, ready: corev1.ConditionFalse,
			readyMessage: "containers with unready status: [proxy main]"},
		{name: "sidecar started, init container running", pod: withSidecar(corev1.RestartPolicyNever, false),
			ctrs:  hist{"proxy": {ctr("proxy", 0, running, 0)}, "setup": {ctr("setup", 0, running, 0)}},
			phase: corev1.PodPending, initialized: corev1.ConditionFalse, ready: corev1.ConditionFalse},
		{name: "all running", pod: withSidecar(corev1.RestartPolicyNever, false),
			ctrs:  hist{"proxy": {ctr("proxy", 0, running, 0)}, "setup": {ctr("setup", 0, exited, 0)}, "main": {ctr("main", 0, running, 0)}},
			phase: corev1.PodRunning, initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue},
		{name: "main done, sidecar still running", pod: withSidecar(corev1.RestartPolicyNever, false),
			ctrs:  hist{"proxy": {ctr("proxy", 0, running, 0)}, "setup": {ctr("setup", 0, exited, 0)}, "main": {ctr("main", 0, exited, 0)}},
			phase: corev1.PodRunning, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse},
		{name: "main done, sidecar stopped", pod: withSidecar(corev1.RestartPolicyNever, false),
			ctrs:  hist{"proxy": {ctr("proxy", 0, exited, 137)}, "setup": {ctr("setup", 0, exited, 0)}, "main": {ctr("main", 0, exited, 0)}},
			phase: corev1.PodSucceeded, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse},
		{name: "main failed, sidecar stopped", pod: withSidecar(corev1.RestartPolicyNever, false),
			ctrs:  hist{"proxy": {ctr("proxy", 0, exited, 0)}, "setup": {ctr("setup", 0, exited, 0)}, "main": {ctr("main", 0, exited, 3)}},
			phase: corev1.PodFailed, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse},
		{name: "sidecar restarting after the pod initialized", pod: withSidecar(corev1.RestartPolicyNever, false),
			ctrs:  hist{"proxy": {ctr("proxy", 1, running, 0), ctr("proxy", 0, exited, 1)}, "setup": {ctr("setup", 0, exited, 0)}, "main": {ctr("main", 0, running, 0)}},
			phase: corev1.PodRunning, initialized: corev1.ConditionTrue, ready: corev1.ConditionTrue},
		{name: "sidecar not ready", pod: withSidecar(corev1.RestartPolicyAlways, false),
			ctrs:   hist{"proxy": {ctr("proxy", 0, running, 0)}, "setup": {ctr("setup", 0, exited, 0)}, "main": {ctr("main", 0, running, 0)}},
			health: map[string]Health{"proxy": {ID: "proxy-a", Started: true, Ready: false}},
			phase:  corev1.PodRunning, initialized: corev1.ConditionTrue, ready: corev1.ConditionFalse,
			readyMessage: "containers with unready status: [proxy]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := Generate(Input{Pod: tt.pod, Sandbox: readySandbox, Containers: tt.ctrs, Health: tt.health})
			if st.Phase != tt.phase {
				t.Errorf("phase %s, want %s", st.Phase, tt.phase)
			}
			for _, want := range []struct {
				t      corev1.PodConditionType
				status corev1.ConditionStatus
			}{{corev1.PodInitialized, tt.initialized}, {corev1.PodReady, tt.ready}} {
				c, _ := findCondition(st.Conditions, want.t)
				if c.Status != want.status {
					t.Errorf("%s %s (%s: %s), want %s", want.t, c.Status, c.Reason, c.Message, want.status)
				}
				if want.t == corev1.PodReady && tt.readyMessage != "" && c.Message != tt.readyMessage {
					t.Errorf("Ready's message %q, want %q", c.Message, tt.readyMessage)
				}
			}
		})
	}
}

func TestRegularDone(t *testing.T) {
	t.Parallel()
	term := func(code int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
	}
	run := corev1.ContainerStatus{Name: "main", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	for _, tt := range []struct {
		policy corev1.RestartPolicy
		status corev1.ContainerStatus
		want   bool
	}{
		{corev1.RestartPolicyNever, term(0), true},
		{corev1.RestartPolicyNever, term(1), true},
		{corev1.RestartPolicyOnFailure, term(0), true},
		{corev1.RestartPolicyOnFailure, term(1), false},
		{corev1.RestartPolicyAlways, term(0), false},
		{corev1.RestartPolicyNever, run, false},
	} {
		pod := testPod(tt.policy, nil, "main")
		if got := RegularDone(pod, []corev1.ContainerStatus{tt.status}); got != tt.want {
			t.Errorf("%s, %s: regularDone = %v, want %v", tt.policy, stateString(tt.status.State), got, tt.want)
		}
	}
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return "exited " + string(rune('0'+s.Terminated.ExitCode))
	}
	return "waiting"
}
