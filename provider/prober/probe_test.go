package prober

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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/remote"
)

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
			req, err := NewHTTPGetRequest(&tt.action, c, "10.0.0.5", "probe")
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
	if req, _ := NewHTTPGetRequest(&corev1.HTTPGetAction{Port: intstr.FromInt32(80)}, c, "h", "lifecycle"); !strings.HasPrefix(req.Header.Get("User-Agent"), "kube-lifecycle/1.") {
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
		want        outcome
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
		got, msg, err := httpProbe(NewHTTPClient(dial, time.Second), req)
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
	if got, msg, err := httpProbe(NewHTTPClient(refused, time.Second), req); got != outcomeFailure || err != nil || !strings.Contains(msg, "Connection refused") {
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

// An exec probe is an ExecSync with the probe's timeout: exit 0 succeeds, another exit fails
// with the output, a command that outruns the timeout fails, a runtime error is an error.
func TestExecProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		resp        *runtimeapi.ExecSyncResponse
		err         error
		want        outcome
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
			cri := execRuntime(func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
				return tt.resp, tt.err
			})
			pr := runner{cri: cri}
			spec := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}}, TimeoutSeconds: 1}
			got, msg, err := pr.run(context.Background(), spec, &corev1.Container{Name: "c"}, "cid", []string{"sh", "-c", "sleep 5"})
			if got != tt.want || msg != tt.wantMessage || (err != nil) != tt.wantErr {
				t.Errorf("%v %q %v, want %v %q error=%v", got, msg, err, tt.want, tt.wantMessage, tt.wantErr)
			}
			if r := execRequests(cri)[0]; r.ContainerId != "cid" || r.Timeout != 1 || fmt.Sprint(r.Cmd) != "[sh -c sleep 5]" {
				t.Errorf("ExecSync %v, want container cid, timeout 1, the command", r)
			}
		})
	}
}

// dialer is a host that connects with dial.
func dialer(dial func(ctx context.Context) (net.Conn, error)) *fake.Host {
	h := fake.NewHost()
	h.Dial = func(ctx context.Context, _ string) (net.Conn, error) { return dial(ctx) }
	return h
}

// dialed are the addresses h was asked to connect to, in order.
func dialed(h *fake.Host) []string {
	var addrs []string
	for _, c := range h.Calls() {
		if c.Method == "DialTCP" {
			addrs = append(addrs, c.Arg)
		}
	}
	return addrs
}

// A tcpSocket probe dials the pod's IP (the host's address) from the host, on the container's
// named port.
func TestTCPProbe(t *testing.T) {
	t.Parallel()
	c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "db", ContainerPort: 5432}}}
	spec := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("db")}}, TimeoutSeconds: 1}
	open := dialer(func(context.Context) (net.Conn, error) { a, b := net.Pipe(); _ = b.Close(); return a, nil })
	if got, _, err := (runner{host: open, podIP: "10.0.0.5"}).run(context.Background(), spec, c, "cid", nil); got != outcomeSuccess || err != nil {
		t.Errorf("open port: %v %v, want success", got, err)
	}
	if addrs := dialed(open); len(addrs) == 0 || addrs[0] != "10.0.0.5:5432" {
		t.Errorf("dialed %q, want 10.0.0.5:5432", addrs)
	}
	hung := dialer(func(ctx context.Context) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() })
	start := time.Now()
	got, msg, err := (runner{host: hung, podIP: "10.0.0.5"}).run(context.Background(), spec, c, "cid", nil)
	if got != outcomeFailure || err != nil || msg == "" || time.Since(start) > 3*time.Second {
		t.Errorf("unanswered port: %v %q %v after %v, want a failure after the 1 s timeout", got, msg, err, time.Since(start))
	}
}

// The User-Agent's version follows the k8s.io/api Satellite is built with.
func TestKubeVersion(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../../go.mod")
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
