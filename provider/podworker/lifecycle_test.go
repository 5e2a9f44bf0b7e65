package podworker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/provider/status"
)

// hookRuntime is a fake runtime whose ExecSync, which must carry a deadline, answers with
// exec (none expected when nil).
var events = fake.Events

func hookRuntime(exec func(ctx context.Context) (*runtimeapi.ExecSyncResponse, error)) *fake.Runtime {
	cri := fake.NewRuntime()
	cri.Hooks.ExecSync = func(ctx context.Context, _ *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("ExecSync without a deadline")
		}
		if exec == nil {
			return nil, errors.New("no ExecSync expected")
		}
		return exec(ctx)
	}
	return cri
}

func stops(cri *fake.Runtime) []*runtimeapi.StopContainerRequest {
	return fake.Requests[runtimeapi.StopContainerRequest](cri, "StopContainer")
}

func execs(cri *fake.Runtime) []*runtimeapi.ExecSyncRequest {
	return fake.Requests[runtimeapi.ExecSyncRequest](cri, "ExecSync")
}

func newHookWorker(cri *fake.Runtime, host *fake.Host) (*Worker, *record.FakeRecorder) {
	rec := record.NewFakeRecorder(100)
	if host == nil {
		host = fake.NewHost()
	}
	return newTestWorker(Config{NodeName: "n", HostIP: "10.0.0.5"}, host, cri, rec, nil), rec
}

func preStopPod(cmd ...string) *corev1.Pod {
	pod := samplePod()
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: cmd}}}
	return pod
}

// preStop runs before StopContainer, which gets what is left of the grace period (at least
// 2 s); a hook that outlasts the grace period is ended once the container has stopped; a
// failed hook gives FailedPreStopHook without its output; no grace period, no hook.
func TestStopContainerPreStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		grace      int64
		exec       func(ctx context.Context) (*runtimeapi.ExecSyncResponse, error)
		wantExecs  int
		wantTimout int64
		wantEvents []string
	}{
		{"hook takes 1 s of 5", 5, func(context.Context) (*runtimeapi.ExecSyncResponse, error) {
			time.Sleep(1100 * time.Millisecond)
			return &runtimeapi.ExecSyncResponse{}, nil
		}, 1, 4, nil},
		{"hook outlasts the grace period", 1, func(ctx context.Context) (*runtimeapi.ExecSyncResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, 1, minGrace, nil},
		{"hook fails", 30, func(context.Context) (*runtimeapi.ExecSyncResponse, error) {
			return &runtimeapi.ExecSyncResponse{ExitCode: 3, Stderr: []byte("password=hunter2")}, nil
		}, 1, 30, []string{"Warning FailedPreStopHook PreStopHook failed"}},
		{"no grace period", 0, nil, 0, minGrace, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cri := hookRuntime(tt.exec)
			p, rec := newHookWorker(cri, nil)
			pod := preStopPod("sh", "-c", "drain")
			if err := p.stopContainer(context.Background(), pod, "server", "cid", tt.grace); err != nil {
				t.Fatal(err)
			}
			execs, stops := execs(cri), stops(cri)
			if len(execs) != tt.wantExecs || len(stops) != 1 || stops[0].Timeout != tt.wantTimout || stops[0].ContainerId != "cid" {
				t.Fatalf("%d hook execs, stops %v; want %d execs then one stop of cid with timeout %d", len(execs), stops, tt.wantExecs, tt.wantTimout)
			}
			if tt.wantExecs > 0 && fmt.Sprint(execs[0].Cmd) != "[sh -c drain]" {
				t.Errorf("hook command %q", execs[0].Cmd)
			}
			if got := events(rec); fmt.Sprint(got) != fmt.Sprint(tt.wantEvents) {
				t.Errorf("events %q, want %q", got, tt.wantEvents)
			}
		})
	}
}

// A failed postStart hook: FailedPostStartHook, the container killed with the Killing event
// "FailedPostStartHook", and the container waiting with PostStartHookError and the kubelet's
// message. The pod's deletion ends a hook without any of that.
func TestPostStart(t *testing.T) {
	t.Parallel()
	cri := hookRuntime(func(context.Context) (*runtimeapi.ExecSyncResponse, error) {
		return &runtimeapi.ExecSyncResponse{ExitCode: 1, Stdout: []byte("no config\n")}, nil
	})
	p, rec := newHookWorker(cri, nil)
	pod := samplePod()
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 1"}}}}
	p.store.put(pod)
	r, _, _, _ := p.store.record(pod.UID)
	if again := p.postStart(context.Background(), &podSync{rec: r, pod: pod}, &pod.Spec.Containers[0], "cid"); again == 0 {
		t.Error("no retry asked after a failed hook")
	}
	want := status.Waiting{Reason: "PostStartHookError", Message: `Exec lifecycle hook ([sh -c exit 1]) for Container "server" in Pod "web-0_shop(1111-2222)" failed - error: command 'sh -c exit 1' exited with 1: , message: "no config\n"`}
	if r.waiting["server"] != want {
		t.Errorf("waiting %+v,\nwant    %+v", r.waiting["server"], want)
	}
	if stops := stops(cri); len(stops) != 1 || stops[0].Timeout != 45 {
		t.Errorf("stops %v, want one with the pod's grace period 45", stops)
	}
	if got := events(rec); fmt.Sprint(got) != fmt.Sprint([]string{"Warning FailedPostStartHook PostStartHook failed", "Normal Killing FailedPostStartHook"}) {
		t.Errorf("events %q", got)
	}

	blocked := hookRuntime(func(ctx context.Context) (*runtimeapi.ExecSyncResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	p, rec = newHookWorker(blocked, nil)
	p.store.put(pod)
	r, _, _, _ = p.store.record(pod.UID)
	go func() {
		time.Sleep(100 * time.Millisecond)
		p.store.markDeleting(pod.UID, 30)
	}()
	if again := p.postStart(context.Background(), &podSync{rec: r, pod: pod}, &pod.Spec.Containers[0], "cid"); again != 0 || len(stops(blocked)) != 0 || len(events(rec)) != 0 || r.waiting["server"].Reason != "" {
		t.Errorf("hook ended by deletion: again %v, stops %v, waiting %+v; want nothing done", again, stops(blocked), r.waiting["server"])
	}
}

// An httpGet hook is sent from the host to the pod's IP; any answer will do, as under the
// kubelet; only a request that fails fails the hook.
func TestHTTPHook(t *testing.T) {
	t.Parallel()
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path+" "+r.Header.Get("User-Agent"))
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var dialed []string
	host := fake.NewHost()
	host.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		if strings.HasSuffix(addr, ":1") {
			return nil, errors.New("connect failed (Connection refused)")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}
	p, _ := newHookWorker(hookRuntime(nil), host)
	pod := samplePod()
	c := &pod.Spec.Containers[0]
	h := &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/shutdown", Port: intstr.FromInt32(8080)}}
	if msg, err := p.runHook(context.Background(), pod, c, "cid", h); err != nil {
		t.Errorf("a 503 failed the hook: %s", msg)
	}
	if len(dialed) != 1 || dialed[0] != "10.0.0.5:8080" || len(paths) != 1 || !strings.HasPrefix(paths[0], "/shutdown kube-lifecycle/1.") {
		t.Errorf("dialed %v, served %v; want the pod IP's port 8080 and GET /shutdown from kube-lifecycle", dialed, paths)
	}
	h.HTTPGet.Port = intstr.FromInt32(1)
	msg, err := p.runHook(context.Background(), pod, c, "cid", h)
	if err == nil || !strings.HasPrefix(msg, `HTTP lifecycle hook (/shutdown) for Container "server" in Pod "web-0_shop(1111-2222)" failed - error: Get "http://10.0.0.5:1/shutdown": `) {
		t.Errorf("refused: %q %v", msg, err)
	}
	sleep := &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.runHook(ctx, pod, c, "cid", sleep); err == nil {
		t.Error("a sleep hook cut short succeeded")
	}
}

// A container whose liveness probe failed is killed with the kubelet's event and the
// probe's grace period; under restart policy Never it is not started again, nor while in
// back-off since its previous exit.
func TestCheckHealthKills(t *testing.T) {
	t.Parallel()
	for _, policy := range []corev1.RestartPolicy{corev1.RestartPolicyNever, corev1.RestartPolicyAlways} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			cri := hookRuntime(nil)
			p, rec := newHookWorker(cri, nil)
			pod := samplePod()
			pod.Spec.RestartPolicy = policy
			c := &pod.Spec.Containers[0]
			c.LivenessProbe = &corev1.Probe{TerminationGracePeriodSeconds: ptr.To[int64](7)}
			p.store.put(pod)
			r, _, _, _ := p.store.record(pod.UID)
			s := &podSync{rec: r, pod: pod, obs: &observation{sandbox: &runtimeapi.PodSandboxStatus{Id: "sb"}}}
			history := []*runtimeapi.ContainerStatus{
				{Id: "c2", Metadata: &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: 1}, State: runtimeapi.ContainerState_CONTAINER_RUNNING},
				{Id: "c1", Metadata: &runtimeapi.ContainerMetadata{Name: c.Name}, State: runtimeapi.ContainerState_CONTAINER_EXITED, FinishedAt: time.Now().Add(-2 * time.Second).UnixNano()},
			}
			p.crashLoop.next(string(pod.UID) + "/" + c.Name)
			if _, acted := p.checkHealth(context.Background(), s, c, history); acted {
				t.Fatal("a healthy container was acted on")
			}
			p.probes = killReasons{probes: p.probes, byID: map[string]string{"c2": "liveness"}}
			again, acted := p.checkHealth(context.Background(), s, c, history)
			if stops := stops(cri); !acted || again != 0 || len(stops) != 1 || stops[0].ContainerId != "c2" || stops[0].Timeout != 7 {
				t.Fatalf("acted %v again %v stops %v; want c2 stopped with the probe's 7 s and nothing started", acted, again, stops)
			}
			want := "Normal Killing Container server failed liveness probe"
			if policy != corev1.RestartPolicyNever {
				want += ", will be restarted"
			}
			if got := events(rec); fmt.Sprint(got) != fmt.Sprint([]string{want}) {
				t.Errorf("events %q, want %q", got, want)
			}
		})
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

// killReasons is a prober whose verdicts on container instances are given.
type killReasons struct {
	probes
	byID map[string]string
}

func (k killReasons) KillReason(_ types.UID, id string) string { return k.byID[id] }
