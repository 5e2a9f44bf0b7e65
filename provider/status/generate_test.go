package status

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
)

var (
	ctr       = fake.ContainerStatus
	testPod   = fake.Pod
	resources = fake.Resources
)

var readySandbox = &runtimeapi.PodSandboxStatus{Id: "sb", State: runtimeapi.PodSandboxState_SANDBOX_READY}

func TestPodStatusPhase(t *testing.T) {
	t.Parallel()
	const (
		running = runtimeapi.ContainerState_CONTAINER_RUNNING
		exited  = runtimeapi.ContainerState_CONTAINER_EXITED
		created = runtimeapi.ContainerState_CONTAINER_CREATED
	)
	type hist = map[string][]*runtimeapi.ContainerStatus
	tests := []struct {
		name     string
		pod      *corev1.Pod
		sandbox  *runtimeapi.PodSandboxStatus
		ctrs     hist
		waiting  map[string]Waiting
		terminal bool
		phase    corev1.PodPhase
		ready    bool
		reason   string // first container's state reason (waiting or terminated)
		restarts int32
	}{
		{name: "nothing yet", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), phase: corev1.PodPending, reason: "ContainerCreating"},
		{name: "running", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, running, 0)}}, phase: corev1.PodRunning, ready: true},
		{name: "one of two running", pod: testPod(corev1.RestartPolicyAlways, nil, "a", "b"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, running, 0)}}, phase: corev1.PodPending, reason: ""},
		{name: "created not started", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, created, 0)}}, phase: corev1.PodPending, reason: "ContainerCreating"},
		{name: "never: exit 3 fails", pod: testPod(corev1.RestartPolicyNever, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, exited, 3)}}, phase: corev1.PodFailed, reason: "Error"},
		{name: "never: exit 0 succeeds", pod: testPod(corev1.RestartPolicyNever, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, exited, 0)}}, phase: corev1.PodSucceeded, reason: "Completed"},
		{name: "onfailure: exit 0 succeeds", pod: testPod(corev1.RestartPolicyOnFailure, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, exited, 0)}}, phase: corev1.PodSucceeded, reason: "Completed"},
		{name: "onfailure: exit 1 keeps running", pod: testPod(corev1.RestartPolicyOnFailure, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, exited, 1)}}, phase: corev1.PodRunning, reason: "Error"},
		{name: "always: exited 0 is restarting", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, exited, 0)}}, phase: corev1.PodRunning, reason: "Completed"},
		{name: "crash loop", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 2, exited, 1), ctr("a", 1, exited, 1)}}, waiting: map[string]Waiting{"a": {Reason: "CrashLoopBackOff", Message: "back-off"}},
			phase: corev1.PodRunning, reason: "CrashLoopBackOff", restarts: 2},
		{name: "restarted and running", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 1, running, 0), ctr("a", 0, exited, 137)}}, phase: corev1.PodRunning, ready: true, restarts: 1},
		{name: "image pull error", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			waiting: map[string]Waiting{"a": {Reason: "ErrImagePull", Message: "no such image"}}, phase: corev1.PodPending, reason: "ErrImagePull"},
		// In a pod with init containers, a container not created yet is PodInitializing, as the
		// kubelet's convertToAPIContainerStatuses has it.
		{name: "init running", pod: testPod(corev1.RestartPolicyAlways, []string{"i"}, "a"), sandbox: readySandbox,
			ctrs: hist{"i": {ctr("i", 0, running, 0)}}, phase: corev1.PodPending, reason: "PodInitializing"},
		{name: "init failed, never", pod: testPod(corev1.RestartPolicyNever, []string{"i"}, "a"), sandbox: readySandbox,
			ctrs: hist{"i": {ctr("i", 0, exited, 1)}}, phase: corev1.PodFailed, reason: "PodInitializing"},
		{name: "init done, main running", pod: testPod(corev1.RestartPolicyAlways, []string{"i"}, "a"), sandbox: readySandbox,
			ctrs: hist{"i": {ctr("i", 0, exited, 0)}, "a": {ctr("a", 0, running, 0)}}, phase: corev1.PodRunning, ready: true},
		{name: "deleted while running: killed", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, exited, 137)}}, terminal: true, phase: corev1.PodFailed, reason: "Error"},
		{name: "deleted, exited 0", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: readySandbox,
			ctrs: hist{"a": {ctr("a", 0, exited, 0)}}, terminal: true, phase: corev1.PodSucceeded, reason: "Completed"},
		{name: "deleted before it ran", pod: testPod(corev1.RestartPolicyAlways, nil, "a"), terminal: true,
			phase: corev1.PodFailed, reason: "ContainerStatusUnknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := Generate(Input{Pod: tt.pod, Sandbox: tt.sandbox, Containers: tt.ctrs, Waiting: tt.waiting,
				HostIP: "192.0.2.7", Start: time.Unix(1, 0), Terminal: tt.terminal})
			if st.Phase != tt.phase {
				t.Errorf("phase = %s, want %s", st.Phase, tt.phase)
			}
			if got := conditionTrue(st.Conditions, corev1.PodReady); got != tt.ready {
				t.Errorf("Ready = %v, want %v", got, tt.ready)
			}
			if st.PodIP != "192.0.2.7" || st.HostIP != "192.0.2.7" {
				t.Errorf("IPs = %s/%s, want the host's", st.PodIP, st.HostIP)
			}
			cs := st.ContainerStatuses[0]
			if r := stateReason(cs.State); r != tt.reason {
				t.Errorf("container state reason = %q, want %q (state %+v)", r, tt.reason, cs.State)
			}
			if cs.RestartCount != tt.restarts {
				t.Errorf("restartCount = %d, want %d", cs.RestartCount, tt.restarts)
			}
		})
	}
}

func TestContainerStatusDetails(t *testing.T) {
	t.Parallel()
	pod := testPod(corev1.RestartPolicyAlways, nil, "a")
	cur := ctr("a", 1, runtimeapi.ContainerState_CONTAINER_RUNNING, 0)
	prev := ctr("a", 0, runtimeapi.ContainerState_CONTAINER_EXITED, 2)
	prev.Reason, prev.Message = "OOMKilled", "out of memory"
	st := Generate(Input{Pod: pod, Sandbox: readySandbox, Containers: map[string][]*runtimeapi.ContainerStatus{"a": {cur, prev}}})
	cs := st.ContainerStatuses[0]
	if cs.ContainerID != "containerd://"+cur.Id || cs.ImageID != "sha256:abc" || cs.Image != "img" {
		t.Errorf("ids: %q %q %q", cs.ContainerID, cs.ImageID, cs.Image)
	}
	if cs.State.Running == nil || !cs.State.Running.StartedAt.Time.Equal(time.Unix(0, cur.StartedAt)) {
		t.Errorf("running state %+v", cs.State)
	}
	last := cs.LastTerminationState.Terminated
	if last == nil || last.ExitCode != 2 || last.Reason != "OOMKilled" || last.Message != "out of memory" || last.ContainerID != "containerd://"+prev.Id {
		t.Errorf("lastState = %+v", last)
	}
	if cs.Started == nil || !*cs.Started || !cs.Ready {
		t.Errorf("started %v ready %v", cs.Started, cs.Ready)
	}
}

func TestQOSClass(t *testing.T) {
	t.Parallel()
	best := testPod(corev1.RestartPolicyAlways, nil, "a")
	if q := qosClass(best); q != corev1.PodQOSBestEffort {
		t.Errorf("no resources: %s", q)
	}
	g := testPod(corev1.RestartPolicyAlways, nil, "a")
	g.Spec.Containers[0].Resources = resources("1", "1Gi", "1", "1Gi")
	if q := qosClass(g); q != corev1.PodQOSGuaranteed {
		t.Errorf("equal requests and limits: %s", q)
	}
	b := testPod(corev1.RestartPolicyAlways, nil, "a")
	b.Spec.Containers[0].Resources = resources("500m", "", "1", "")
	if q := qosClass(b); q != corev1.PodQOSBurstable {
		t.Errorf("cpu only: %s", q)
	}
}

func conditionTrue(cs []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range cs {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func stateReason(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return s.Waiting.Reason
	case s.Terminated != nil:
		return s.Terminated.Reason
	}
	return ""
}

// The probes' verdict reaches the container status and the pod's conditions; an instance
// the verdict is not about, and a pod being torn down, keep what CRI says.
func TestPodStatusWithProbes(t *testing.T) {
	t.Parallel()
	pod := testPod(corev1.RestartPolicyAlways, nil, "server")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
	running := &runtimeapi.ContainerStatus{Id: "c1", Metadata: &runtimeapi.ContainerMetadata{Name: pod.Spec.Containers[0].Name},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: time.Now().UnixNano()}
	sandbox := &runtimeapi.PodSandboxStatus{Id: "sb", State: runtimeapi.PodSandboxState_SANDBOX_READY}
	containers := map[string][]*runtimeapi.ContainerStatus{pod.Spec.Containers[0].Name: {running}}
	tests := []struct {
		name      string
		health    map[string]Health
		wantReady bool
	}{
		{"not ready", map[string]Health{pod.Spec.Containers[0].Name: {ID: "c1", Started: true}}, false},
		{"ready", map[string]Health{pod.Spec.Containers[0].Name: {ID: "c1", Started: true, Ready: true}}, true},
		{"verdict on another instance", map[string]Health{pod.Spec.Containers[0].Name: {ID: "old"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := Generate(Input{Pod: pod, Sandbox: sandbox, Containers: containers, Waiting: map[string]Waiting{}, HostIP: "10.0.0.5", Start: time.Now(), Health: tt.health})
			if got := st.ContainerStatuses[0].Ready; got != tt.wantReady {
				t.Errorf("container ready = %v, want %v", got, tt.wantReady)
			}
			for _, c := range st.Conditions {
				if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && (c.Status == corev1.ConditionTrue) != tt.wantReady {
					t.Errorf("condition %s = %s, want ready=%v", c.Type, c.Status, tt.wantReady)
				}
			}
		})
	}
	st := Generate(Input{Pod: pod, Sandbox: sandbox, Containers: containers, Waiting: map[string]Waiting{}, HostIP: "10.0.0.5", Start: time.Now(),
		Health: map[string]Health{pod.Spec.Containers[0].Name: {ID: "c1", Started: false}}})
	if cs := st.ContainerStatuses[0]; cs.Started == nil || *cs.Started || cs.Ready {
		t.Errorf("a container whose startup probe has not succeeded: started=%v ready=%v, want false false", cs.Started, cs.Ready)
	}
}
