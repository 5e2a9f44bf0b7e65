package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/satellite-vk/satellite/test/flood"
)

// TestIntegrationAuthFlood floods Satellite's kubelet API for a minute with 300 requests a
// second that it must refuse, half with random bearer tokens (a TokenReview each, unless
// refused for lack of budget) and half with valid tokens of a ServiceAccount without rights.
// Meanwhile the node must stay Ready, its lease must be renewed on schedule, Satellite's
// memory must stay under the chart's limit, and a user's `kubectl logs` must keep working.
func TestIntegrationAuthFlood(t *testing.T) {
	e := loadEnv(t)
	const rate, duration = 300, 60 * time.Second
	tg := e.targets(t)[0] // the node SATELLITE_API and SATELLITE_PID belong to
	api, pid := e.get(t, "SATELLITE_API"), e.get(t, "SATELLITE_PID")
	limit := chartMemoryLimit(t)
	ns := e.namespace(t)
	nobody := e.saToken(t, ns, "nobody", nil)
	userConfig := e.logReader(t, ns)
	pod := e.createPod(t, ns, tg.pod("flood", corev1.RestartPolicyNever, "echo flood-log; sleep 3600"))
	pod = e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)

	const inFlight = 256 // one connection each: requests never wait for one in the client
	client := e.kubeletClient(t)
	tr := client.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = inFlight, inFlight
	ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
	defer cancel()
	var res flood.Result
	var floodErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, floodErr = flood.Run(ctx, flood.Config{
			URL:     fmt.Sprintf("https://%s/containerLogs/%s/%s/main", api, ns, pod.Name),
			Allowed: []string{api}, Rate: rate, Duration: duration, MaxInFlight: inFlight, Client: client,
			Token: func(i int) string {
				if i%2 == 1 {
					return nobody
				}
				b := make([]byte, 32)
				_, _ = rand.Read(b)
				return hex.EncodeToString(b)
			},
		})
	}()
	w := e.watchNode(t, tg.node, pid, limit, userConfig, ns, pod.Name, done)
	if floodErr != nil {
		t.Fatalf("flood: %v", floodErr)
	}
	t.Logf("flood of %d/s for %v at %s: %v", rate, duration, api, res)
	w.report(t, limit)
	if res.Codes[http.StatusOK] > 0 {
		t.Errorf("%d flood requests were served: none has the right to", res.Codes[http.StatusOK])
	}
}

// nodeWatch is what was seen of the node, its lease, Satellite's memory and a user's logs
// while the flood ran.
type nodeWatch struct {
	samples, notReady   int
	renewInterval       time.Duration
	maxLeaseGap         time.Duration
	maxRSS              int64
	logs                []time.Duration
	logErrors           []string
	notReadyAt, rssOver []string
}

// watchNode samples every second until done is closed: the node's Ready condition, the gap
// since its lease was last renewed, Satellite's RSS; and runs `kubectl logs` as the user every
// few seconds.
func (e *env) watchNode(t *testing.T, node, pid string, limit int64, userConfig, ns, pod string, done <-chan struct{}) *nodeWatch {
	t.Helper()
	w := new(nodeWatch)
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() { // the user's kubectl logs, one after another with 2 s between
		for {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := e.kubectlAs(ctx, t, userConfig, "-n", ns, "logs", pod)
			cancel()
			mu.Lock()
			if err == nil && !strings.Contains(out, "flood-log") {
				err = fmt.Errorf("output %q without the pod's log", out)
			}
			if err != nil {
				w.logErrors = append(w.logErrors, fmt.Sprintf("%s: %v", time.Now().Format(time.TimeOnly), err))
			} else {
				w.logs = append(w.logs, time.Since(start))
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(2 * time.Second):
			}
		}
	})
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		e.sample(t, w, node, pid, limit)
		select {
		case <-done:
			wg.Wait()
			return w
		case <-tick.C:
		}
	}
}

// sample records the node's readiness, the time since its lease's renewTime and Satellite's RSS.
func (e *env) sample(t *testing.T, w *nodeWatch, node, pid string, limit int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	w.samples++
	n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil || !nodeIsReady(n) {
		w.notReady++
		w.notReadyAt = append(w.notReadyAt, fmt.Sprintf("%s (%v)", now.Format(time.TimeOnly), err))
	}
	l, err := e.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Errorf("lease of %s: %v", node, err)
	} else if l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil {
		// The renew interval is a quarter of the lease duration, in the kubelet and in
		// virtual-kubelet's lease controller (DefaultRenewIntervalFraction).
		w.renewInterval = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second / 4
		w.maxLeaseGap = max(w.maxLeaseGap, now.Sub(l.Spec.RenewTime.Time))
	}
	rss, err := rssBytes(pid)
	if err != nil {
		t.Errorf("Satellite's RSS: %v", err)
	}
	w.maxRSS = max(w.maxRSS, rss)
	if rss >= limit {
		w.rssOver = append(w.rssOver, fmt.Sprintf("%s: %d MiB", now.Format(time.TimeOnly), rss>>20))
	}
}

// report logs the figures and fails the test on what a user would notice.
func (w *nodeWatch) report(t *testing.T, limit int64) {
	t.Helper()
	sort.Slice(w.logs, func(a, b int) bool { return w.logs[a] < w.logs[b] })
	var p50, slowest time.Duration
	if n := len(w.logs); n > 0 {
		p50, slowest = w.logs[n/2], w.logs[n-1]
	}
	t.Logf("node: %d samples, %d not Ready; lease: renew interval %v, longest since renewal %v; Satellite RSS max %d MiB (limit %d MiB)",
		w.samples, w.notReady, w.renewInterval, w.maxLeaseGap.Round(100*time.Millisecond), w.maxRSS>>20, limit>>20)
	t.Logf("kubectl logs as a user: %d ok, %d failed, latency p50 %v max %v",
		len(w.logs), len(w.logErrors), p50.Round(time.Millisecond), slowest.Round(time.Millisecond))
	if w.notReady > 0 {
		t.Errorf("node not Ready during the flood at %v", w.notReadyAt)
	}
	// Sampled once a second with a renewTime of second precision on the wire: twice the
	// interval is a starved heartbeat, not jitter.
	if w.renewInterval == 0 || w.maxLeaseGap > 2*w.renewInterval {
		t.Errorf("lease renewed %v after the previous renewal at worst, want within 2 × %v", w.maxLeaseGap, w.renewInterval)
	}
	if len(w.rssOver) > 0 {
		t.Errorf("Satellite's RSS over the chart's memory limit (%d MiB) at %v", limit>>20, w.rssOver)
	}
	if len(w.logErrors) > 0 || len(w.logs) == 0 {
		t.Errorf("kubectl logs as a user failed during the flood: %v", w.logErrors)
	}
}

// rssBytes is a process's resident set size, from /proc/<pid>/status.
func rssBytes(pid string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%s/status", pid)
}

// chartMemoryLimit is the memory limit the chart gives Satellite's container.
func chartMemoryLimit(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "charts", "satellite", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var values struct {
		Resources corev1.ResourceRequirements `json:"resources"`
	}
	if err := yaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&values); err != nil {
		t.Fatalf("chart values: %v", err)
	}
	q, ok := values.Resources.Limits[corev1.ResourceMemory]
	if !ok || q.Cmp(resource.MustParse("1Mi")) < 0 {
		t.Fatalf("the chart's values give Satellite no memory limit: %v", values.Resources)
	}
	return q.Value()
}

// logReader is a kubeconfig for a ServiceAccount of ns allowed to read its pods' logs (and
// nothing else): a user, whose kubectl logs reach the kubelet API through the apiserver.
func (e *env) logReader(t *testing.T, ns string) string {
	t.Helper()
	ctx := context.Background()
	token := e.saToken(t, ns, "log-reader", nil)
	if _, err := e.client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "log-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "log-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "log-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "log-reader", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(e.get(t, "KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.ClientCertificate, a.ClientKey, a.ClientCertificateData, a.ClientKeyData = "", "", nil, nil
		a.Token = token
	}
	path := filepath.Join(t.TempDir(), "log-reader.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectlAs runs the environment's kubectl with another kubeconfig.
func (e *env) kubectlAs(ctx context.Context, t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
