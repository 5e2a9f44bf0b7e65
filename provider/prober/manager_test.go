package prober

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/satellite-vk/satellite/provider/internal/fake"
)

// A result is recorded once it has come threshold times in a row (the kubelet's resultRun).
func TestProbeCounter(t *testing.T) {
	t.Parallel()
	S, F := resultSuccess, resultFailure
	tests := []struct {
		name             string
		success, failure int32
		results          []result
		want             []bool
	}{
		{"defaults: one success, three failures", 1, 3, []result{S, F, F, F, F, S}, []bool{true, false, false, true, true, true}},
		{"success threshold 2", 2, 1, []result{S, F, S, S, S}, []bool{false, true, false, true, true}},
		{"a success breaks a run of failures", 1, 2, []result{F, S, F, F}, []bool{false, true, false, true}},
		{"zero thresholds count as 1", 0, 0, []result{F, S}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c counter
			for i, r := range tt.results {
				if got := c.observe(r, tt.success, tt.failure); got != tt.want[i] {
					t.Errorf("result %d (%v): recorded %v, want %v", i, r, got, tt.want[i])
				}
			}
		})
	}
}

// Started and ready from the probes' results, as the kubelet's UpdatePodStatus.
func TestHealthOf(t *testing.T) {
	t.Parallel()
	probe := &corev1.Probe{}
	none, S, F := resultNone, resultSuccess, resultFailure
	tests := []struct {
		name                   string
		startup, readiness     *corev1.Probe
		startupRes, readyRes   result
		wantStarted, wantReady bool
	}{
		{"no probes", nil, nil, none, none, true, true},
		{"readiness not yet run", nil, probe, none, none, true, false},
		{"readiness failing", nil, probe, none, F, true, false},
		{"readiness succeeded", nil, probe, none, S, true, true},
		{"startup pending gates readiness", probe, probe, none, S, false, false},
		{"startup pending, no readiness probe", probe, nil, none, none, false, false},
		{"startup succeeded, no readiness probe", probe, nil, S, none, true, true},
		{"startup succeeded, readiness pending", probe, probe, S, F, true, false},
		{"startup failed", probe, nil, F, none, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &corev1.Container{Name: "c", StartupProbe: tt.startup, ReadinessProbe: tt.readiness}
			h := healthOf(c, "id", tt.startupRes, tt.readyRes)
			if h.Started != tt.wantStarted || h.Ready != tt.wantReady {
				t.Errorf("started=%v ready=%v, want %v %v", h.Started, h.Ready, tt.wantStarted, tt.wantReady)
			}
		})
	}
}

// newTestManager is a probe manager over a scripted runtime, counting the wakes it sends.
func newTestManager(cri *fake.Runtime) (*Manager, *record.FakeRecorder, func() int) {
	rec := record.NewFakeRecorder(100)
	var mu sync.Mutex
	wakes := 0
	m := NewManager(Config{Runtime: cri, Recorder: rec, Notify: func(types.UID) { mu.Lock(); wakes++; mu.Unlock() }})
	return m, rec, func() int { mu.Lock(); defer mu.Unlock(); return wakes }
}

func probePod() *corev1.Pod {
	pod := testPod()
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
		TimeoutSeconds: 1, PeriodSeconds: 3600, SuccessThreshold: 1, FailureThreshold: 2}
	pod.Spec.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"started"}}},
		TimeoutSeconds: 1, PeriodSeconds: 3600, SuccessThreshold: 1, FailureThreshold: 1}
	return pod
}

func runningObs(pod *corev1.Pod, id string, startedAt time.Time) map[string][]*runtimeapi.ContainerStatus {
	name := pod.Spec.Containers[0].Name
	return map[string][]*runtimeapi.ContainerStatus{name: {{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: startedAt.UnixNano()}}}
}

// A worker's probes: the liveness probe waits for the startup probe; the startup probe's
// success is recorded and wakes the pod; liveness failures are recorded only at the
// threshold, with an Unhealthy event each, and then the worker holds.
func TestProbeWorkerThresholds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	exit := map[string]int32{"started": 0, "check": 1}
	cri := execRuntime(func(_ context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		return &runtimeapi.ExecSyncResponse{ExitCode: exit[r.Cmd[0]], Stdout: []byte(r.Cmd[0] + " said no")}, nil
	})
	m, rec, wakes := newTestManager(cri)
	pod := probePod()
	c := &pod.Spec.Containers[0]
	m.byPod[pod.UID] = &podProbes{workers: map[probeKey]*worker{}, results: map[string]*[3]result{"c1": m.initialResults(pod, c.Name, runningObs(pod, "c1", time.Now())[c.Name][0])}}
	worker := func(k kind) *worker {
		return &worker{m: m, kind: k, spec: k.spec(c), pod: pod, container: c, id: "c1", startedAt: time.Now(), command: k.spec(c).Exec.Command}
	}
	live, start := worker(liveness), worker(startup)
	ctx := context.Background()

	live.probe(ctx)
	if len(execRequests(cri)) != 0 {
		t.Fatalf("liveness probed before the container started: %v", execRequests(cri))
	}
	start.probe(ctx)
	if m.result(pod.UID, "c1", startup) != resultSuccess || wakes() != 1 || !start.onHold {
		t.Fatalf("startup success: result %v, wakes %d, on hold %v; want recorded, one wake, holding", m.result(pod.UID, "c1", startup), wakes(), start.onHold)
	}
	live.probe(ctx)
	if m.KillReason(pod.UID, "c1") != "" {
		t.Fatal("one liveness failure of two killed the container")
	}
	live.probe(ctx)
	if got := m.KillReason(pod.UID, "c1"); got != "liveness" || wakes() != 2 || !live.onHold {
		t.Fatalf("after two failures: kill reason %q, wakes %d, on hold %v", got, wakes(), live.onHold)
	}
	n := len(execRequests(cri))
	live.probe(ctx)
	if len(execRequests(cri)) != n {
		t.Error("a worker on hold probed again")
	}
	close(rec.Events)
	var events []string
	for e := range rec.Events {
		events = append(events, e)
	}
	want := []string{"Warning Unhealthy Liveness probe failed: check said no", "Warning Unhealthy Liveness probe failed: check said no"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", events, want)
	}
}

// A new instance is not probed the moment it is seen running: the kubelet's worker probes on
// its ticks, once the instance's status shows it running. A readiness probe runs at once when
// the pod's status asks for it (health), as the kubelet's UpdatePodStatus triggers it.
func TestProbeWorkerFirstProbe(t *testing.T) {
	t.Parallel()
	cri := execRuntime(func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		return &runtimeapi.ExecSyncResponse{}, nil
	})
	m, _, _ := newTestManager(cri)
	m.start = time.Now().Add(-time.Hour) // not just started: no spreading of first probes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	execs := func() []string {
		var cmds []string
		for _, r := range execRequests(cri) {
			cmds = append(cmds, r.Cmd[0])
		}
		return cmds
	}

	pod := probePod() // liveness every hour
	pod.Spec.Containers[0].StartupProbe = nil
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}},
		TimeoutSeconds: 1, PeriodSeconds: 3600, SuccessThreshold: 1, FailureThreshold: 1}
	obs := runningObs(pod, "c1", time.Now())
	m.Sync(ctx, pod, obs)
	time.Sleep(200 * time.Millisecond)
	if got := execs(); len(got) != 0 {
		t.Fatalf("probed at once: %v", got)
	}
	if h := m.Health(pod, obs)[pod.Spec.Containers[0].Name]; h.Ready {
		t.Fatal("ready before its readiness probe ran")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(execs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := fmt.Sprint(execs()); got != "[ready]" {
		t.Errorf("after the status asked for readiness: probes %s, want [ready]", got)
	}
}

// sync starts a worker per probe of each running container and stops them when the instance
// stops running; Forget and the end of run stop the rest. A container adopted from an
// earlier Satellite keeps the started and ready its pod's status showed.
func TestProbeManagerLifecycle(t *testing.T) {
	t.Parallel()
	cri := execRuntime(func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		return &runtimeapi.ExecSyncResponse{}, nil
	})
	m, _, _ := newTestManager(cri)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()

	pod := probePod()
	m.Sync(ctx, pod, runningObs(pod, "c1", time.Now()))
	workers := func() map[probeKey]*worker {
		m.mu.Lock()
		defer m.mu.Unlock()
		if pp := m.byPod[pod.UID]; pp != nil {
			return maps(pp.workers)
		}
		return nil
	}
	first := workers()
	if len(first) != 2 {
		t.Fatalf("%d workers for a container with a startup and a liveness probe, want 2", len(first))
	}
	m.Sync(ctx, pod, runningObs(pod, "c2", time.Now())) // restarted
	for _, w := range first {
		select {
		case <-w.done:
		default:
			t.Errorf("the %s worker of the old instance still runs", w.kind)
		}
	}
	if m.result(pod.UID, "c1", liveness) != resultNone || m.result(pod.UID, "c2", liveness) != resultSuccess {
		t.Error("results not moved to the new instance")
	}
	m.Forget(pod.UID)
	if len(workers()) != 0 {
		t.Error("workers left after Forget")
	}

	// Adopted: started 1 hour ago, the pod's status said started and Ready.
	adopted := probePod()
	adopted.UID = "adopted"
	adopted.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"r"}}}, PeriodSeconds: 3600}
	adopted.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: adopted.Spec.Containers[0].Name, ContainerID: "containerd://a1", Started: ptr.To(true), Ready: true}}
	adopted.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	obs := runningObs(adopted, "a1", time.Now().Add(-time.Hour))
	m.Sync(ctx, adopted, obs)
	if h := m.Health(adopted, obs)[adopted.Spec.Containers[0].Name]; !h.Started || !h.Ready {
		t.Errorf("adopted container: started=%v ready=%v, want both as its status said", h.Started, h.Ready)
	}
	cancel()
	<-done
	m.Sync(context.Background(), pod, runningObs(pod, "c3", time.Now()))
	if len(workers()) != 0 {
		t.Error("a worker started after Satellite stopped")
	}
}

func maps(in map[probeKey]*worker) map[probeKey]*worker {
	out := make(map[probeKey]*worker, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// execRuntime is a runtime that answers ExecSync with exec, and fails one without a deadline.
func execRuntime(exec func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error)) *fake.Runtime {
	cri := fake.NewRuntime()
	cri.Hooks.ExecSync = func(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("ExecSync without a deadline")
		}
		return exec(ctx, r)
	}
	return cri
}

// execRequests are the ExecSync requests cri had, in order.
func execRequests(cri *fake.Runtime) []*runtimeapi.ExecSyncRequest {
	return fake.Requests[runtimeapi.ExecSyncRequest](cri, "ExecSync")
}

// testPod is a pod with one container, "server".
func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "1111-2222"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "example.test/web:1"}}},
	}
}
