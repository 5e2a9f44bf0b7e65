package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/satellite-vk/satellite/remote"
)

// A result is recorded once it has come threshold times in a row (the kubelet's resultRun).
func TestProbeCounter(t *testing.T) {
	t.Parallel()
	S, F := resultSuccess, resultFailure
	tests := []struct {
		name             string
		success, failure int32
		results          []probeResult
		want             []bool
	}{
		{"defaults: one success, three failures", 1, 3, []probeResult{S, F, F, F, F, S}, []bool{true, false, false, true, true, true}},
		{"success threshold 2", 2, 1, []probeResult{S, F, S, S, S}, []bool{false, true, false, true, true}},
		{"a success breaks a run of failures", 1, 2, []probeResult{F, S, F, F}, []bool{false, true, false, true}},
		{"zero thresholds count as 1", 0, 0, []probeResult{F, S}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c probeCounter
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
		startupRes, readyRes   probeResult
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
			if h.started != tt.wantStarted || h.ready != tt.wantReady {
				t.Errorf("started=%v ready=%v, want %v %v", h.started, h.ready, tt.wantStarted, tt.wantReady)
			}
		})
	}
}

// The probes' verdict reaches the container status and the pod's conditions; an instance
// the verdict is not about, and a pod being torn down, keep what CRI says.
func TestPodStatusWithProbes(t *testing.T) {
	t.Parallel()
	pod := samplePod()
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
	running := &runtimeapi.ContainerStatus{Id: "c1", Metadata: &runtimeapi.ContainerMetadata{Name: pod.Spec.Containers[0].Name},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: time.Now().UnixNano()}
	obs := observation{
		sandbox:    &runtimeapi.PodSandboxStatus{Id: "sb", State: runtimeapi.PodSandboxState_SANDBOX_READY},
		containers: map[string][]*runtimeapi.ContainerStatus{pod.Spec.Containers[0].Name: {running}},
	}
	tests := []struct {
		name      string
		health    map[string]containerHealth
		wantReady bool
	}{
		{"not ready", map[string]containerHealth{pod.Spec.Containers[0].Name: {id: "c1", started: true}}, false},
		{"ready", map[string]containerHealth{pod.Spec.Containers[0].Name: {id: "c1", started: true, ready: true}}, true},
		{"verdict on another instance", map[string]containerHealth{pod.Spec.Containers[0].Name: {id: "old"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := podStatus(statusInput{pod: pod, obs: obs, waiting: map[string]waiting{}, hostIP: "10.0.0.5", start: time.Now(), health: tt.health})
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
	st := podStatus(statusInput{pod: pod, obs: obs, waiting: map[string]waiting{}, hostIP: "10.0.0.5", start: time.Now(),
		health: map[string]containerHealth{pod.Spec.Containers[0].Name: {id: "c1", started: false}}})
	if cs := st.ContainerStatuses[0]; cs.Started == nil || *cs.Started || cs.Ready {
		t.Errorf("a container whose startup probe has not succeeded: started=%v ready=%v, want false false", cs.Started, cs.Ready)
	}
}

// The request of an httpGet probe is the kubelet's (pkg/probe/http/request.go).
func TestHTTPGetRequest(t *testing.T) {
	t.Parallel()
	c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	ua := regexp.MustCompile(`^kube-probe/1\.[0-9]+$`)
	tests := []struct {
		name       string
		action     corev1.HTTPGetAction
		wantURL    string
		wantHost   string
		wantAccept []string
		wantUA     string // "" means the default kube-probe/<version>
		wantErr    string
	}{
		{name: "defaults", action: corev1.HTTPGetAction{Port: intstr.FromInt32(80)},
			wantURL: "http://10.0.0.5:80", wantAccept: []string{"*/*"}},
		{name: "named port, path and query", action: corev1.HTTPGetAction{Port: intstr.FromString("http"), Path: "/healthz?full=1"},
			wantURL: "http://10.0.0.5:8080/healthz?full=1", wantAccept: []string{"*/*"}},
		{name: "number as a string", action: corev1.HTTPGetAction{Port: intstr.FromString("9090"), Path: "/x"},
			wantURL: "http://10.0.0.5:9090/x", wantAccept: []string{"*/*"}},
		{name: "https and host", action: corev1.HTTPGetAction{Port: intstr.FromInt32(443), Scheme: corev1.URISchemeHTTPS, Host: "example.test"},
			wantURL: "https://example.test:443", wantAccept: []string{"*/*"}},
		{name: "headers kept, Host header, User-Agent and Accept overridden", action: corev1.HTTPGetAction{Port: intstr.FromInt32(80), HTTPHeaders: []corev1.HTTPHeader{
			{Name: "X-Custom", Value: "a"}, {Name: "Host", Value: "virtual.test"}, {Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: "text/plain"}}},
			wantURL: "http://10.0.0.5:80", wantHost: "virtual.test", wantAccept: []string{"text/plain"}, wantUA: "mine"},
		{name: "empty Accept removes it", action: corev1.HTTPGetAction{Port: intstr.FromInt32(80), HTTPHeaders: []corev1.HTTPHeader{{Name: "Accept", Value: ""}}},
			wantURL: "http://10.0.0.5:80"},
		{name: "unknown port name", action: corev1.HTTPGetAction{Port: intstr.FromString("metrics")}, wantErr: "port metrics not found"},
		{name: "port out of range", action: corev1.HTTPGetAction{Port: intstr.FromInt32(70000)}, wantErr: "invalid port number: 70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := httpGetRequest(&tt.action, c, "10.0.0.5", "probe")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodGet || req.URL.String() != tt.wantURL || req.Host != tt.wantHost {
				t.Errorf("%s %s Host=%q, want GET %s Host=%q", req.Method, req.URL, req.Host, tt.wantURL, tt.wantHost)
			}
			if got := req.Header.Values("Accept"); fmt.Sprint(got) != fmt.Sprint(tt.wantAccept) {
				t.Errorf("Accept %q, want %q", got, tt.wantAccept)
			}
			if got := req.Header.Get("User-Agent"); tt.wantUA != "" && got != tt.wantUA || tt.wantUA == "" && !ua.MatchString(got) {
				t.Errorf("User-Agent %q, want %q or kube-probe/1.N", got, tt.wantUA)
			}
		})
	}
	if req, _ := httpGetRequest(&corev1.HTTPGetAction{Port: intstr.FromInt32(80)}, c, "h", "lifecycle"); !strings.HasPrefix(req.Header.Get("User-Agent"), "kube-lifecycle/1.") {
		t.Errorf("hook User-Agent %q, want kube-lifecycle/1.N", req.Header.Get("User-Agent"))
	}
}

// The httpGet probe's verdicts: 2xx succeeds, a redirect on the same host is followed, one to
// another host is a warning, 4xx and 5xx fail with the code only, a refused connection fails.
func TestHTTPProbe(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "fine") })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.test/", http.StatusFound)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "secret stack trace")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var seen []string
	var mu sync.Mutex
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		seen = append(seen, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}
	tests := []struct {
		path        string
		want        probeOutcome
		wantMessage string
	}{
		{"/ok", outcomeSuccess, "fine"},
		{"/moved", outcomeSuccess, "fine"},
		{"/away", outcomeWarning, "Probe terminated redirects, Response body: "},
		{"/broken", outcomeFailure, "HTTP probe failed with statuscode: 500"},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, "http://10.9.9.9:8080"+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, msg, err := httpProbe(httpClient(dial, time.Second), req)
		if err != nil || got != tt.want || !strings.HasPrefix(msg, tt.wantMessage) {
			t.Errorf("%s: %v %q %v, want %v %q", tt.path, got, msg, err, tt.want, tt.wantMessage)
		}
	}
	if len(seen) == 0 || seen[0] != "10.9.9.9:8080" {
		t.Errorf("dialed %v, want the probe's address as seen from the host", seen)
	}
	refused := func(context.Context, string) (net.Conn, error) {
		return nil, errors.New("connect failed (Connection refused)")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://10.9.9.9:8080/", nil)
	if got, msg, err := httpProbe(httpClient(refused, time.Second), req); got != outcomeFailure || err != nil || !strings.Contains(msg, "Connection refused") {
		t.Errorf("refused: %v %q %v, want a failure naming the cause", got, msg, err)
	}
}

func TestExpandCommand(t *testing.T) {
	t.Parallel()
	env := []corev1.EnvVar{{Name: "PORT", Value: "8080"}, {Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}
	got := expandCommand([]string{"check", "$(PORT)", "$(TOKEN)", "$(NOPE)", "$$(PORT)", "cost $5", "$(open", "end$"}, env)
	want := []string{"check", "8080", "", "$(NOPE)", "$(PORT)", "cost $5", "$(open", "end$"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expanded %q, want %q", got, want)
	}
}

func TestKillGrace(t *testing.T) {
	t.Parallel()
	probe := &corev1.Probe{TerminationGracePeriodSeconds: ptr.To[int64](3)}
	tests := []struct {
		name   string
		pod    corev1.Pod
		failed *corev1.Probe
		want   int64
	}{
		{"pod's", corev1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](30)}}, &corev1.Probe{}, 30},
		{"probe's", corev1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](30)}}, probe, 3},
		{"deletion's", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionGracePeriodSeconds: ptr.To[int64](1)},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](30)}}, probe, 1},
		{"none", corev1.Pod{}, probe, minGrace},
	}
	for _, tt := range tests {
		if got := killGrace(&tt.pod, tt.failed); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

// hookCRI answers ExecSync from a script and records StopContainer.
type hookCRI struct {
	Runtime
	mu    sync.Mutex
	exec  func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error)
	execs []*runtimeapi.ExecSyncRequest
	stops []*runtimeapi.StopContainerRequest
}

func (f *hookCRI) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest, _ ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error) {
	f.mu.Lock()
	f.execs = append(f.execs, r)
	exec := f.exec
	f.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("ExecSync without a deadline")
	}
	return exec(ctx, r)
}

func (f *hookCRI) StopContainer(_ context.Context, r *runtimeapi.StopContainerRequest, _ ...grpc.CallOption) (*runtimeapi.StopContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops = append(f.stops, r)
	return &runtimeapi.StopContainerResponse{}, nil
}

// An exec probe is an ExecSync with the probe's timeout: exit 0 succeeds, another exit fails
// with the output, a command that outruns the timeout fails, a runtime error is an error.
func TestExecProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		resp        *runtimeapi.ExecSyncResponse
		err         error
		want        probeOutcome
		wantMessage string
		wantErr     bool
	}{
		{"exit 0", &runtimeapi.ExecSyncResponse{Stdout: []byte("ok\n")}, nil, outcomeSuccess, "ok\n", false},
		{"exit 1", &runtimeapi.ExecSyncResponse{ExitCode: 1, Stdout: []byte("out "), Stderr: []byte("cat: /tmp/ready: No such file")}, nil,
			outcomeFailure, "out cat: /tmp/ready: No such file", false},
		{"timeout", nil, fmt.Errorf("cri ExecSync: timeout 1s exceeded: %w: %w", remote.ErrUnavailable, remote.ErrDeadlineExceeded), outcomeFailure,
			`command timed out: "sh -c sleep 5" timed out after 1s`, false},
		{"not running", nil, fmt.Errorf("cri ExecSync: container is not running: %w", remote.ErrNotFound), outcomeFailure, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cri := &hookCRI{exec: func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
				return tt.resp, tt.err
			}}
			pr := prober{cri: cri}
			spec := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}}, TimeoutSeconds: 1}
			got, msg, err := pr.run(context.Background(), spec, &corev1.Container{Name: "c"}, "cid", []string{"sh", "-c", "sleep 5"})
			if got != tt.want || msg != tt.wantMessage || (err != nil) != tt.wantErr {
				t.Errorf("%v %q %v, want %v %q error=%v", got, msg, err, tt.want, tt.wantMessage, tt.wantErr)
			}
			if r := cri.execs[0]; r.ContainerId != "cid" || r.Timeout != 1 || fmt.Sprint(r.Cmd) != "[sh -c sleep 5]" {
				t.Errorf("ExecSync %v, want container cid, timeout 1, the command", r)
			}
		})
	}
}

// fakeDialer connects to whatever the test says, recording the address asked for.
type fakeDialer struct {
	mu    sync.Mutex
	addrs []string
	dial  func(ctx context.Context) (net.Conn, error)
}

func (d *fakeDialer) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	return d.dial(ctx)
}

// A tcpSocket probe dials the pod's IP (the host's address) from the host, on the container's
// named port.
func TestTCPProbe(t *testing.T) {
	t.Parallel()
	c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "db", ContainerPort: 5432}}}
	spec := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("db")}}, TimeoutSeconds: 1}
	open := &fakeDialer{dial: func(context.Context) (net.Conn, error) { a, b := net.Pipe(); _ = b.Close(); return a, nil }}
	if got, _, err := (prober{host: open, podIP: "10.0.0.5"}).run(context.Background(), spec, c, "cid", nil); got != outcomeSuccess || err != nil {
		t.Errorf("open port: %v %v, want success", got, err)
	}
	if open.addrs[0] != "10.0.0.5:5432" {
		t.Errorf("dialed %q, want 10.0.0.5:5432", open.addrs[0])
	}
	hung := &fakeDialer{dial: func(ctx context.Context) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }}
	start := time.Now()
	got, msg, err := (prober{host: hung, podIP: "10.0.0.5"}).run(context.Background(), spec, c, "cid", nil)
	if got != outcomeFailure || err != nil || msg == "" || time.Since(start) > 3*time.Second {
		t.Errorf("unanswered port: %v %q %v after %v, want a failure after the 1 s timeout", got, msg, err, time.Since(start))
	}
}

// newTestManager is a probe manager over a scripted runtime, counting the wakes it sends.
func newTestManager(cri *hookCRI) (*probeManager, *record.FakeRecorder, func() int) {
	rec := record.NewFakeRecorder(100)
	var mu sync.Mutex
	wakes := 0
	m := newProbeManager(prober{cri: cri}, rec, func(types.UID) { mu.Lock(); wakes++; mu.Unlock() },
		func(*corev1.Pod, string) []corev1.EnvVar { return nil })
	return m, rec, func() int { mu.Lock(); defer mu.Unlock(); return wakes }
}

func probePod() *corev1.Pod {
	pod := samplePod()
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
		TimeoutSeconds: 1, PeriodSeconds: 3600, SuccessThreshold: 1, FailureThreshold: 2}
	pod.Spec.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"started"}}},
		TimeoutSeconds: 1, PeriodSeconds: 3600, SuccessThreshold: 1, FailureThreshold: 1}
	return pod
}

func runningObs(pod *corev1.Pod, id string, startedAt time.Time) observation {
	name := pod.Spec.Containers[0].Name
	return observation{containers: map[string][]*runtimeapi.ContainerStatus{name: {{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: startedAt.UnixNano()}}}}
}

// A worker's probes: the liveness probe waits for the startup probe; the startup probe's
// success is recorded and wakes the pod; liveness failures are recorded only at the
// threshold, with an Unhealthy event each, and then the worker holds.
func TestProbeWorkerThresholds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	exit := map[string]int32{"started": 0, "check": 1}
	cri := &hookCRI{exec: func(_ context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		return &runtimeapi.ExecSyncResponse{ExitCode: exit[r.Cmd[0]], Stdout: []byte(r.Cmd[0] + " said no")}, nil
	}}
	m, rec, wakes := newTestManager(cri)
	pod := probePod()
	c := &pod.Spec.Containers[0]
	m.pods[pod.UID] = &podProbes{workers: map[probeKey]*probeWorker{}, results: map[string]*[3]probeResult{"c1": m.initialResults(pod, c.Name, runningObs(pod, "c1", time.Now()).containers[c.Name][0])}}
	worker := func(k probeKind) *probeWorker {
		return &probeWorker{m: m, kind: k, spec: k.spec(c), pod: pod, container: c, id: "c1", startedAt: time.Now(), command: k.spec(c).Exec.Command}
	}
	live, start := worker(liveness), worker(startup)
	ctx := context.Background()

	live.probe(ctx)
	if len(cri.execs) != 0 {
		t.Fatalf("liveness probed before the container started: %v", cri.execs)
	}
	start.probe(ctx)
	if m.result(pod.UID, "c1", startup) != resultSuccess || wakes() != 1 || !start.onHold {
		t.Fatalf("startup success: result %v, wakes %d, on hold %v; want recorded, one wake, holding", m.result(pod.UID, "c1", startup), wakes(), start.onHold)
	}
	live.probe(ctx)
	if m.killReason(pod.UID, "c1") != "" {
		t.Fatal("one liveness failure of two killed the container")
	}
	live.probe(ctx)
	if got := m.killReason(pod.UID, "c1"); got != "liveness" || wakes() != 2 || !live.onHold {
		t.Fatalf("after two failures: kill reason %q, wakes %d, on hold %v", got, wakes(), live.onHold)
	}
	n := len(cri.execs)
	live.probe(ctx)
	if len(cri.execs) != n {
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
	cri := &hookCRI{exec: func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		return &runtimeapi.ExecSyncResponse{}, nil
	}}
	m, _, _ := newTestManager(cri)
	m.start = time.Now().Add(-time.Hour) // not just started: no spreading of first probes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }()
	defer func() { cancel(); <-done }()
	execs := func() []string {
		cri.mu.Lock()
		defer cri.mu.Unlock()
		var cmds []string
		for _, r := range cri.execs {
			cmds = append(cmds, r.Cmd[0])
		}
		return cmds
	}

	pod := probePod() // liveness every hour
	pod.Spec.Containers[0].StartupProbe = nil
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}},
		TimeoutSeconds: 1, PeriodSeconds: 3600, SuccessThreshold: 1, FailureThreshold: 1}
	obs := runningObs(pod, "c1", time.Now())
	m.sync(ctx, pod, obs)
	time.Sleep(200 * time.Millisecond)
	if got := execs(); len(got) != 0 {
		t.Fatalf("probed at once: %v", got)
	}
	if h := m.health(pod, obs)[pod.Spec.Containers[0].Name]; h.ready {
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
// stops running; stopPod and the end of run stop the rest. A container adopted from an
// earlier Satellite keeps the started and ready its pod's status showed.
func TestProbeManagerLifecycle(t *testing.T) {
	t.Parallel()
	cri := &hookCRI{exec: func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		return &runtimeapi.ExecSyncResponse{}, nil
	}}
	m, _, _ := newTestManager(cri)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }()

	pod := probePod()
	m.sync(ctx, pod, runningObs(pod, "c1", time.Now()))
	workers := func() map[probeKey]*probeWorker {
		m.mu.Lock()
		defer m.mu.Unlock()
		if pp := m.pods[pod.UID]; pp != nil {
			return maps(pp.workers)
		}
		return nil
	}
	first := workers()
	if len(first) != 2 {
		t.Fatalf("%d workers for a container with a startup and a liveness probe, want 2", len(first))
	}
	m.sync(ctx, pod, runningObs(pod, "c2", time.Now())) // restarted
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
	m.stopPod(pod.UID)
	if len(workers()) != 0 {
		t.Error("workers left after stopPod")
	}

	// Adopted: started 1 hour ago, the pod's status said started and Ready.
	adopted := probePod()
	adopted.UID = "adopted"
	adopted.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"r"}}}, PeriodSeconds: 3600}
	adopted.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: adopted.Spec.Containers[0].Name, ContainerID: "containerd://a1", Started: ptr.To(true), Ready: true}}
	adopted.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	obs := runningObs(adopted, "a1", time.Now().Add(-time.Hour))
	m.sync(ctx, adopted, obs)
	if h := m.health(adopted, obs)[adopted.Spec.Containers[0].Name]; !h.started || !h.ready {
		t.Errorf("adopted container: started=%v ready=%v, want both as its status said", h.started, h.ready)
	}
	cancel()
	<-done
	m.sync(context.Background(), pod, runningObs(pod, "c3", time.Now()))
	if len(workers()) != 0 {
		t.Error("a worker started after Satellite stopped")
	}
}

func maps(in map[probeKey]*probeWorker) map[probeKey]*probeWorker {
	out := make(map[probeKey]*probeWorker, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// The User-Agent's version follows the k8s.io/api Satellite is built with.
func TestKubeVersion(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.(\d+)\.`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no k8s.io/api")
	}
	if want := "1." + string(m[1]); kubeVersion != want {
		t.Errorf("kubeVersion = %s, but go.mod has k8s.io/api for Kubernetes %s", kubeVersion, want)
	}
}
