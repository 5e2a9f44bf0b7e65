package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// busyScript holds 8 MiB in a shell variable, so that the pod's working set shows in
// `kubectl top` (which rounds to Mi), then spins.
const busyScript = `x=$(yes | head -c 8388608); while :; do :; done`

// busyCPULimit is the spinning pod's CPU limit: its usage settles there under CFS.
const busyCPULimit = 100 // millicores

// usage is what kubectl top and the metrics API showed on one node.
type usage struct {
	podCPU, podMemMi   int64 // kubectl top pod: millicores, Mi
	nodeCPU, nodeMemMi int64 // kubectl top node
}

// TestIntegrationMetrics runs a pod that spins under a 100m CPU limit on each Satellite node
// and on the reference kubelet's node, and reads what metrics-server makes of them:
// `kubectl top pod` shows the pod near its limit with its 8 MiB, `kubectl top node` the node
// with non-zero CPU and memory, as on the kubelet's node. All three nodes are one machine (the
// host is a network namespace), so their node figures compare too. Underneath, each node's
// /metrics/resource has the kubelet's families, types and labels, and /stats/summary the pod.
func TestIntegrationMetrics(t *testing.T) {
	e := loadEnv(t)
	e.needMetricsAPI(t)
	var mu sync.Mutex
	seen := map[string]usage{}
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		pod := tg.pod("busy", corev1.RestartPolicyNever, busyScript)
		pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{
			corev1.ResourceCPU: *resource.NewMilliQuantity(busyCPULimit, resource.DecimalSI), corev1.ResourceMemory: resource.MustParse("64Mi")}
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)

		var u usage
		// metrics-server needs two scrapes 15 s apart for a CPU rate; let the pod settle
		// past its start too.
		e.waitFor(t, 3*time.Minute, "kubectl top pod to show "+ns+"/busy near its CPU limit", func(ctx context.Context) (bool, error) {
			out, err := e.kubectl(ctx, t, "", "top", "pod", "-n", ns, "busy", "--no-headers")
			if err != nil {
				return false, err
			}
			f := strings.Fields(out)
			if len(f) != 3 || f[0] != "busy" {
				return false, fmt.Errorf("kubectl top pod: %q", out)
			}
			u.podCPU, u.podMemMi = quantity(t, f[1], "m"), quantity(t, f[2], "Mi")
			return u.podCPU >= busyCPULimit/2 && u.podMemMi >= 8, fmt.Errorf("kubectl top pod: %q", out)
		})
		e.waitFor(t, time.Minute, "kubectl top node "+tg.node, func(ctx context.Context) (bool, error) {
			out, err := e.kubectl(ctx, t, "", "top", "node", tg.node, "--no-headers")
			if err != nil {
				return false, err
			}
			f := strings.Fields(out)
			if len(f) != 5 || f[0] != tg.node {
				return false, fmt.Errorf("kubectl top node: %q", out)
			}
			u.nodeCPU, u.nodeMemMi = quantity(t, f[1], "m"), quantity(t, f[3], "Mi")
			return u.nodeCPU > 0 && u.nodeMemMi > 0, fmt.Errorf("kubectl top node: %q", out)
		})
		t.Logf("%s: pod %dm %dMi, node %dm %dMi", tg.name, u.podCPU, u.podMemMi, u.nodeCPU, u.nodeMemMi)
		if u.podCPU > busyCPULimit*3/2 {
			t.Errorf("%s: the pod uses %dm of CPU under a %dm limit", tg.name, u.podCPU, busyCPULimit)
		}
		if u.nodeCPU < u.podCPU*9/10 {
			t.Errorf("%s: the node uses %dm of CPU, less than its pod's %dm", tg.name, u.nodeCPU, u.podCPU)
		}
		mu.Lock()
		seen[tg.name] = u
		mu.Unlock()

		e.checkResourceMetrics(t, tg, ns)
		e.checkSummary(t, tg, ns)
		e.deletePod(t, ns, pod.Name)
	})
	if t.Failed() {
		return
	}
	ref, ok := seen["kubelet"]
	if !ok {
		return
	}
	for name, u := range seen {
		// Same limit, same spinning shell: the same CPU, within the noise of a busy machine.
		if u.podCPU < ref.podCPU*6/10 || u.podCPU > ref.podCPU*14/10 {
			t.Errorf("%s: pod CPU %dm, the kubelet's node %dm", name, u.podCPU, ref.podCPU)
		}
		// One machine: the nodes' memory in use is the same up to what the root cgroup and
		// /proc/meminfo count differently (kernel memory, page cache being reclaimed).
		if u.nodeMemMi < ref.nodeMemMi/3 || u.nodeMemMi > ref.nodeMemMi*3 {
			t.Errorf("%s: node memory %dMi, the kubelet's node %dMi: not the same machine?", name, u.nodeMemMi, ref.nodeMemMi)
		}
	}
}

// needMetricsAPI fails unless metrics-server is registered and available: an environment
// brought up before it was part of dev-up.sh must be brought up again.
func (e *env) needMetricsAPI(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := e.kubectl(ctx, t, "", "get", "apiservice", "v1beta1.metrics.k8s.io", "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
	if err != nil || strings.TrimSpace(out) != "True" {
		t.Fatalf("the metrics API is not available (%q, %v): run hack/dev-up.sh again, which starts metrics-server "+
			"and restarts kube-apiserver with the aggregation layer's flags; metrics-server's log: %s", out, err, e.vars["METRICS_SERVER_LOG"])
	}
}

// quantity reads a kubectl top figure ("123m", "45Mi") in the unit given.
func quantity(t *testing.T, s, unit string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSuffix(s, unit), 10, 64)
	if err != nil || !strings.HasSuffix(s, unit) {
		t.Fatalf("kubectl top figure %q is not a number of %s", s, unit)
	}
	return n
}

// familyShape is what a metric family looks like: its type and label names.
type familyShape struct {
	typ    string
	labels string
}

// coreFamilies are the resource metrics metrics-server reads, and the kubelet's error gauge.
var coreFamilies = []string{"node_cpu_usage_seconds_total", "node_memory_working_set_bytes", "container_cpu_usage_seconds_total",
	"container_memory_working_set_bytes", "container_start_time_seconds", "pod_cpu_usage_seconds_total", "pod_memory_working_set_bytes",
	"resource_scrape_error"}

// checkResourceMetrics reads the node's /metrics/resource through the apiserver, as
// metrics-server does: every core family with the kubelet's type and label names, timestamps
// on the usage series, the busy container counted, no scrape error.
func (e *env) checkResourceMetrics(t *testing.T, tg target, ns string) {
	t.Helper()
	text := e.mustKubectl(t, "", "get", "--raw", "/api/v1/nodes/"+tg.node+"/proxy/metrics/resource")
	shapes, series := parseMetricsText(t, text)
	want := map[string]familyShape{
		"node_cpu_usage_seconds_total":       {"counter", ""},
		"node_memory_working_set_bytes":      {"gauge", ""},
		"container_cpu_usage_seconds_total":  {"counter", "container,namespace,pod"},
		"container_memory_working_set_bytes": {"gauge", "container,namespace,pod"},
		"container_start_time_seconds":       {"gauge", "container,namespace,pod"},
		"pod_cpu_usage_seconds_total":        {"counter", "namespace,pod"},
		"pod_memory_working_set_bytes":       {"gauge", "namespace,pod"},
		"resource_scrape_error":              {"gauge", ""},
	}
	for _, name := range coreFamilies {
		if got := shapes[name]; got != want[name] {
			t.Errorf("%s: /metrics/resource: %s is %+v, want %+v", tg.name, name, got, want[name])
		}
	}
	busy := fmt.Sprintf(`container_cpu_usage_seconds_total{container="main",namespace=%q,pod="busy"}`, ns)
	if s, ok := series[busy]; !ok || s.value <= 0 || !s.timestamped {
		t.Errorf("%s: /metrics/resource: %s = %+v, want a positive, timestamped counter", tg.name, busy, s)
	}
	if s := series["node_memory_working_set_bytes"]; s.value <= 0 || !s.timestamped {
		t.Errorf("%s: /metrics/resource: node_memory_working_set_bytes = %+v", tg.name, s)
	}
	if s := series["resource_scrape_error"]; s.value != 0 {
		t.Errorf("%s: /metrics/resource: resource_scrape_error %v", tg.name, s.value)
	}
}

type sample struct {
	value       float64
	timestamped bool
}

// parseMetricsText reads the Prometheus text format: each family's type and sorted label
// names, and each series ("name{labels}" as written) with its value.
func parseMetricsText(t *testing.T, text string) (map[string]familyShape, map[string]sample) {
	t.Helper()
	shapes, series := map[string]familyShape{}, map[string]sample{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				shapes[f[0]] = familyShape{typ: f[1], labels: shapes[f[0]].labels}
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest := line, ""
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			key, rest = line[:i+1], line[i+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			key, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			t.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[key] = sample{value: v, timestamped: len(f) == 2}
		name, labels, _ := strings.Cut(key, "{")
		var names []string
		for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if k, _, ok := strings.Cut(kv, "="); ok {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		s := shapes[name]
		s.labels = strings.Join(names, ",")
		shapes[name] = s
	}
	return shapes, series
}

// checkSummary reads the node's /stats/summary through the apiserver: the node's CPU rate
// and memory, and the busy pod with its container.
func (e *env) checkSummary(t *testing.T, tg target, ns string) {
	t.Helper()
	var s statsapi.Summary
	// usageNanoCores takes two readings; metrics-server's scrapes have made them by now, and
	// a reading is shared for a second: ask until one comes with the rate.
	e.waitFor(t, 30*time.Second, tg.node+"'s /stats/summary with CPU rates", func(ctx context.Context) (bool, error) {
		out, err := e.kubectl(ctx, t, "", "get", "--raw", "/api/v1/nodes/"+tg.node+"/proxy/stats/summary")
		if err != nil {
			return false, err
		}
		s = statsapi.Summary{}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			return false, err
		}
		return s.Node.CPU != nil && s.Node.CPU.UsageNanoCores != nil && *s.Node.CPU.UsageNanoCores > 0, nil
	})
	if s.Node.NodeName != tg.node || s.Node.Memory == nil || s.Node.Memory.WorkingSetBytes == nil || *s.Node.Memory.WorkingSetBytes == 0 ||
		s.Node.Memory.AvailableBytes == nil || s.Node.StartTime.IsZero() {
		t.Errorf("%s: /stats/summary node %+v", tg.name, s.Node)
	}
	for _, p := range s.Pods {
		if p.PodRef.Namespace != ns || p.PodRef.Name != "busy" {
			continue
		}
		if len(p.Containers) != 1 || p.Containers[0].Name != "main" || p.CPU == nil || p.CPU.UsageCoreNanoSeconds == nil || *p.CPU.UsageCoreNanoSeconds == 0 ||
			p.Memory == nil || p.Memory.WorkingSetBytes == nil || *p.Memory.WorkingSetBytes < 8<<20 {
			t.Errorf("%s: /stats/summary pod %+v", tg.name, p)
		}
		return
	}
	t.Errorf("%s: /stats/summary has no pod %s/busy", tg.name, ns)
}
