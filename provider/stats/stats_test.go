package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// t0 is when the test's readings are taken: sandboxes and containers were made before.
var t0 = time.Unix(1795334299, 0)

func sandbox(id, ns, name, uid string, state runtimeapi.PodSandboxState, created time.Time) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{Id: id, State: state, CreatedAt: created.UnixNano(),
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid},
		Labels:   map[string]string{kuberuntime.LabelPodName: name, kuberuntime.LabelPodNamespace: ns, kuberuntime.LabelPodUID: uid, kuberuntime.LabelNode: "n"}}
}

func container(id, sandboxID, name string, state runtimeapi.ContainerState, created time.Time) *runtimeapi.Container {
	return &runtimeapi.Container{Id: id, PodSandboxId: sandboxID, State: state, CreatedAt: created.UnixNano(),
		Metadata: &runtimeapi.ContainerMetadata{Name: name}, Labels: map[string]string{kuberuntime.LabelContainerName: name, kuberuntime.LabelNode: "n"}}
}

// cstats is a container's stats as containerd 1.6 gives them: cumulative CPU, no rate.
func cstats(id, name string, at time.Time, cpuNanos, workingSet uint64) *runtimeapi.ContainerStats {
	ts := at.UnixNano()
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpuNanos}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: workingSet},
			UsageBytes: &runtimeapi.UInt64Value{Value: workingSet + 1000}, RssBytes: &runtimeapi.UInt64Value{Value: workingSet / 2}},
		WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: ts, UsedBytes: &runtimeapi.UInt64Value{Value: 4096}, InodesUsed: &runtimeapi.UInt64Value{Value: 3}},
	}
}

// podsSample: pod ns/a (a sandbox recreated: the old one is gone from the stats) with two
// running containers and the exited first instance of one, pod ns/b with one whose memory the
// runtime did not report, and a pod whose only container exited.
func podsSample(at time.Time, cpuA uint64) criSample {
	return criSample{
		Sandboxes: []*runtimeapi.PodSandbox{
			sandbox("sb-a-old", "ns", "a", "ua", runtimeapi.PodSandboxState_SANDBOX_NOTREADY, t0.Add(-time.Hour)),
			sandbox("sb-a", "ns", "a", "ua", runtimeapi.PodSandboxState_SANDBOX_READY, t0.Add(-10*time.Minute)),
			sandbox("sb-b", "ns", "b", "ub", runtimeapi.PodSandboxState_SANDBOX_READY, t0.Add(-5*time.Minute)),
			sandbox("sb-c", "ns", "c", "uc", runtimeapi.PodSandboxState_SANDBOX_READY, t0.Add(-5*time.Minute)),
		},
		Containers: []*runtimeapi.Container{
			container("c-old", "sb-a-old", "main", runtimeapi.ContainerState_CONTAINER_EXITED, t0.Add(-time.Hour)),
			container("c1", "sb-a", "main", runtimeapi.ContainerState_CONTAINER_RUNNING, t0.Add(-9*time.Minute)),
			container("c2", "sb-a", "side", runtimeapi.ContainerState_CONTAINER_RUNNING, t0.Add(-9*time.Minute)),
			container("c3", "sb-b", "main", runtimeapi.ContainerState_CONTAINER_RUNNING, t0.Add(-4*time.Minute)),
			container("c4", "sb-c", "main", runtimeapi.ContainerState_CONTAINER_EXITED, t0.Add(-4*time.Minute)),
		},
		ContainerStats: []*runtimeapi.ContainerStats{
			cstats("c-old", "main", at, 0, 0),
			cstats("c1", "main", at, cpuA, 30<<20),
			cstats("c2", "side", at, 1e9, 10<<20),
			{Attributes: &runtimeapi.ContainerAttributes{Id: "c3", Metadata: &runtimeapi.ContainerMetadata{Name: "main"}},
				Cpu: &runtimeapi.CpuUsage{Timestamp: at.UnixNano(), UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 5e8}}},
			cstats("c4", "main", at, 0, 0),
		},
	}
}

func sampleNode(t *testing.T, at time.Time) nodeSample {
	t.Helper()
	n, err := parseNodeSample([]byte(nodeOutput), at)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func u64(v *uint64) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}

func TestSummaryFromContainerStats(t *testing.T) {
	t.Parallel()
	rates := newCPURates()
	n := sampleNode(t, t0)
	s := summary("n", n, podsSample(t0, 3e9), rates)

	if s.Node.NodeName != "n" || !s.Node.StartTime.Time.Equal(time.Unix(1795308933, 0)) {
		t.Errorf("node %s started %v", s.Node.NodeName, s.Node.StartTime)
	}
	// usage = MemTotal - MemFree; working set = usage - Inactive(file); available = total - working set.
	usage := uint64(24684092-16941100) << 10
	ws := usage - 1392320<<10
	m := s.Node.Memory
	if *m.UsageBytes != usage || *m.WorkingSetBytes != ws || *m.AvailableBytes != 24684092<<10-ws || *m.RSSBytes != 3222208<<10 || *m.PageFaults != 429689601 {
		t.Errorf("node memory: usage %s, working set %s, available %s, rss %s; want %d, %d, %d", u64(m.UsageBytes), u64(m.WorkingSetBytes), u64(m.AvailableBytes), u64(m.RSSBytes), usage, ws, 24684092<<10-ws)
	}
	if *s.Node.CPU.UsageCoreNanoSeconds != n.CPU || s.Node.CPU.UsageNanoCores != nil {
		t.Errorf("node CPU %s ns, %s nanocores; want %d and no rate at the first reading", u64(s.Node.CPU.UsageCoreNanoSeconds), u64(s.Node.CPU.UsageNanoCores), n.CPU)
	}
	if *s.Node.Fs.CapacityBytes != 264212084<<10 || *s.Node.Fs.InodesFree != 16131207 || s.Node.Runtime.ImageFs != s.Node.Fs {
		t.Errorf("node filesystem %+v, image fs %+v", s.Node.Fs, s.Node.Runtime.ImageFs)
	}

	if len(s.Pods) != 2 || s.Pods[0].PodRef.Name != "a" || s.Pods[1].PodRef.Name != "b" {
		t.Fatalf("pods %+v, want a and b (c has no running container)", s.Pods)
	}
	a := s.Pods[0]
	if a.PodRef.UID != "ua" || !a.StartTime.Time.Equal(t0.Add(-10*time.Minute)) || len(a.Containers) != 2 || a.Containers[0].Name != "main" || a.Containers[1].Name != "side" {
		t.Errorf("pod a: %+v started %v with %d containers; want the ready sandbox's, main and side", a.PodRef, a.StartTime, len(a.Containers))
	}
	if *a.CPU.UsageCoreNanoSeconds != 4e9 || *a.Memory.WorkingSetBytes != 40<<20 || *a.Memory.UsageBytes != 40<<20+2000 || *a.Memory.RSSBytes != 20<<20 {
		t.Errorf("pod a: CPU %s ns, working set %s, usage %s; want the sums of its containers", u64(a.CPU.UsageCoreNanoSeconds), u64(a.Memory.WorkingSetBytes), u64(a.Memory.UsageBytes))
	}
	c := a.Containers[0]
	if !c.StartTime.Time.Equal(t0.Add(-9*time.Minute)) || *c.CPU.UsageCoreNanoSeconds != 3e9 || !c.CPU.Time.Time.Equal(t0) || *c.Memory.WorkingSetBytes != 30<<20 ||
		*c.Rootfs.UsedBytes != 4096 || *c.Rootfs.CapacityBytes != 264212084<<10 || *c.Swap.SwapUsageBytes != 0 {
		t.Errorf("container main: %+v", c)
	}
	b := s.Pods[1].Containers[0]
	if *b.Memory.WorkingSetBytes != 0 || *b.Memory.UsageBytes != 0 || !b.Memory.Time.Time.Equal(t0) {
		t.Errorf("memory the runtime left out: %+v; want zeros at the reading's time, as the kubelet", b.Memory)
	}
}

func TestSummaryFromSandboxStats(t *testing.T) {
	t.Parallel()
	c := podsSample(t0, 3e9)
	ts := t0.UnixNano()
	sbStats := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb-a"},
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu:        &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 7e9}, UsageNanoCores: &runtimeapi.UInt64Value{Value: 250e6}},
			Memory:     &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: 64 << 20}},
			Containers: []*runtimeapi.ContainerStats{c.ContainerStats[1], c.ContainerStats[0]},
		},
	}
	c.SandboxStats, c.ContainerStats = []*runtimeapi.PodSandboxStats{sbStats, {Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb-gone"}}}, nil
	s := summary("n", sampleNode(t, t0), c, newCPURates())
	if len(s.Pods) != 1 {
		t.Fatalf("pods %+v, want a only", s.Pods)
	}
	a := s.Pods[0]
	if *a.CPU.UsageCoreNanoSeconds != 7e9 || *a.CPU.UsageNanoCores != 250e6 || *a.Memory.WorkingSetBytes != 64<<20 {
		t.Errorf("pod a: CPU %s ns at %s nanocores, working set %s; want the pod cgroup's", u64(a.CPU.UsageCoreNanoSeconds), u64(a.CPU.UsageNanoCores), u64(a.Memory.WorkingSetBytes))
	}
	if len(a.Containers) != 1 || a.Containers[0].Name != "main" {
		t.Errorf("containers %+v, want the running main only", a.Containers)
	}
}

// usageNanoCores takes two readings: none at the first, the rate at the second; a restart (a
// new container id) and a counter that went back start over; the runtime's own rate wins.
func TestCPURates(t *testing.T) {
	t.Parallel()
	r := newCPURates()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	read := func(id string, when time.Time, cpu uint64) *uint64 {
		return r.container(cstats(id, "main", when, cpu, 1))
	}
	if v := read("c1", at(0), 10e9); v != nil {
		t.Errorf("first reading: %d nanocores, want none", *v)
	}
	if v := read("c1", at(10*time.Second), 15e9); v == nil || *v != 500e6 {
		t.Errorf("5 s of CPU in 10 s: %s nanocores, want 500000000", u64(v))
	}
	// The container restarted: a new id, its counter from zero.
	r.keep(map[string]bool{"c1": true})
	if v := read("c1b", at(20*time.Second), 1e9); v != nil {
		t.Errorf("a restarted container's first reading: %d nanocores, want none", *v)
	}
	r.keep(map[string]bool{"c1b": true})
	if _, ok := r.containers["c1"]; ok || len(r.containers) != 1 {
		t.Errorf("the old container is still remembered: %v", r.containers)
	}
	if v := read("c1b", at(30*time.Second), 3e9); v == nil || *v != 200e6 {
		t.Errorf("after the restart: %s nanocores, want 200000000", u64(v))
	}
	// The same id's counter went back (it should not, but the kubelet guards it too).
	if v := read("c1b", at(40*time.Second), 1e9); v != nil {
		t.Errorf("counter went back: %d nanocores, want none", *v)
	}
	if v := read("c1b", at(40*time.Second), 2e9); v != nil {
		t.Errorf("no time passed: %d nanocores, want none", *v)
	}
	// containerd computes its own rate: it is taken as is, and nothing is remembered.
	st := cstats("c9", "main", at(0), 1e9, 1)
	st.Cpu.UsageNanoCores = &runtimeapi.UInt64Value{Value: 123}
	if v := r.container(st); v == nil || *v != 123 {
		t.Errorf("runtime's rate: %s, want 123", u64(v))
	}
	if _, ok := r.containers["c9"]; ok {
		t.Error("a container with the runtime's rate was remembered")
	}

	// The node: timed by the host's uptime; a reboot starts over.
	n := nodeSample{Uptime: 100 * time.Second, Boot: time.Unix(1000, 0), CPU: 50e9}
	if v := r.node(n); v != nil {
		t.Errorf("node's first reading: %d", *v)
	}
	n.Uptime, n.CPU = 115*time.Second, 80e9
	if v := r.node(n); v == nil || *v != 2e9 {
		t.Errorf("node: 30 s of CPU in 15 s: %s nanocores, want 2000000000", u64(v))
	}
	n.Boot, n.Uptime, n.CPU = time.Unix(5000, 0), 10*time.Second, 90e9
	if v := r.node(n); v != nil {
		t.Errorf("after a reboot: %d nanocores, want none", *v)
	}
}

// Two summaries 15 s apart, as metrics-server scrapes, give rates, and the resource metrics
// follow a container's restart the way metrics-server detects one: a new start time and a
// counter that went back.
func TestSummaryRatesAcrossReadingsAndRestart(t *testing.T) {
	t.Parallel()
	rates := newCPURates()
	n1 := sampleNode(t, t0)
	summary("n", n1, podsSample(t0, 3e9), rates)
	n2 := n1
	n2.At, n2.Uptime, n2.CPU = t0.Add(15*time.Second), n1.Uptime+15*time.Second, n1.CPU+3e9
	s := summary("n", n2, podsSample(t0.Add(15*time.Second), 6e9), rates)
	if v := s.Node.CPU.UsageNanoCores; v == nil || *v != 200e6 {
		t.Errorf("node: %s nanocores, want 200000000", u64(v))
	}
	a := s.Pods[0]
	if v := a.Containers[0].CPU.UsageNanoCores; v == nil || *v != 200e6 {
		t.Errorf("container: %s nanocores, want 200000000", u64(v))
	}
	if v := a.CPU.UsageNanoCores; v == nil || *v != 200e6 {
		t.Errorf("pod: %s nanocores, want its containers' 200000000 + 0", u64(v))
	}

	// main restarts as c1b, 30 s later, with 1 s of CPU so far.
	c := podsSample(t0.Add(30*time.Second), 0)
	c.Containers[1].State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.Containers = append(c.Containers, container("c1b", "sb-a", "main", runtimeapi.ContainerState_CONTAINER_RUNNING, t0.Add(25*time.Second)))
	c.ContainerStats = append(c.ContainerStats, cstats("c1b", "main", t0.Add(30*time.Second), 1e9, 5<<20))
	before := metricValues(resourceMetrics(s))
	after := metricValues(resourceMetrics(summary("n", n2, c, rates)))
	key := `container_cpu_usage_seconds_total{container="main",namespace="ns",pod="a"}`
	if before[key] != 6 || after[key] != 1 {
		t.Errorf("%s: %v then %v, want 6 then 1 (the new container's)", key, before[key], after[key])
	}
	start := `container_start_time_seconds{container="main",namespace="ns",pod="a"}`
	if after[start] <= before[start] {
		t.Errorf("%s: %v then %v, want a later start", start, before[start], after[start])
	}
	if pod := `pod_cpu_usage_seconds_total{namespace="ns",pod="a"}`; after[pod] != 2 {
		t.Errorf("%s = %v after the restart, want 1 + 1", pod, after[pod])
	}
	if _, ok := rates.containers["c1"]; ok {
		t.Error("the exited container's reading is still kept")
	}
}

// metricValues flattens families into "name{labels}" -> value.
func metricValues(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			var l []string
			for _, p := range m.Label {
				l = append(l, fmt.Sprintf("%s=%q", p.GetName(), p.GetValue()))
			}
			k := mf.GetName()
			if len(l) > 0 {
				k += "{" + strings.Join(l, ",") + "}"
			}
			out[k] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// The text the kubelet API serves (virtual-kubelet encodes the families as below): the
// kubelet's names, help, types, label names and millisecond timestamps, sorted.
func TestResourceMetricsText(t *testing.T) {
	t.Parallel()
	c := podsSample(t0, 3e9)
	c.Containers, c.ContainerStats = c.Containers[1:2], c.ContainerStats[1:2]
	s := summary("n", sampleNode(t, t0), c, newCPURates())
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range resourceMetrics(s) {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	const want = `# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="main",namespace="ns",pod="a"} 3 1795334299000
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="main",namespace="ns",pod="a"} 3.145728e+07 1795334299000
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="main",namespace="ns",pod="a"} 1.795333759e+09
# HELP container_swap_limit_bytes [ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems
# TYPE container_swap_limit_bytes gauge
container_swap_limit_bytes{container="main",namespace="ns",pod="a"} 0 1795334299000
# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems
# TYPE container_swap_usage_bytes gauge
container_swap_usage_bytes{container="main",namespace="ns",pod="a"} 0 1795334299000
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 12442.68 1795334299000
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 6.503088128e+09 1795334299000
# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems
# TYPE node_swap_usage_bytes gauge
node_swap_usage_bytes 0 1795334299000
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="ns",pod="a"} 3 1795334299000
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="ns",pod="a"} 3.145728e+07 1795334299000
# HELP pod_swap_usage_bytes [ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems
# TYPE pod_swap_usage_bytes gauge
pod_swap_usage_bytes{namespace="ns",pod="a"} 0 1795334299000
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
`
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// It parses back as the Prometheus text format, with names valid for any Prometheus.
	p := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(buf.String())); err != nil {
		t.Fatal(err)
	}
	failed := metricValues(resourceMetrics(nil))
	if len(failed) != 1 || failed["resource_scrape_error"] != 1 {
		t.Errorf("a failed reading: %v, want resource_scrape_error 1 alone", failed)
	}
}

// statsRuntime is a runtime whose lists answer the sample; sbErr, when set, is
// ListPodSandboxStats' answer. The stats lists fail unless filtered by the node's label.
func statsRuntime(sample criSample, sbErr error) *fake.Runtime {
	cri := fake.NewRuntime()
	cri.Hooks.ListPodSandbox = func(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
		return &runtimeapi.ListPodSandboxResponse{Items: sample.Sandboxes}, nil
	}
	cri.Hooks.ListContainers = func(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
		return &runtimeapi.ListContainersResponse{Containers: sample.Containers}, nil
	}
	cri.Hooks.ListPodSandboxStats = func(_ context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
		if r.GetFilter().GetLabelSelector()[kuberuntime.LabelNode] != "n" {
			return nil, errors.New("not filtered by the node's label")
		}
		if sbErr != nil {
			return nil, sbErr
		}
		return &runtimeapi.ListPodSandboxStatsResponse{Stats: sample.SandboxStats}, nil
	}
	cri.Hooks.ListContainerStats = func(_ context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
		if r.GetFilter().GetLabelSelector()[kuberuntime.LabelNode] != "n" {
			return nil, errors.New("not filtered by the node's label")
		}
		return &runtimeapi.ListContainerStatsResponse{Stats: sample.ContainerStats}, nil
	}
	return cri
}

// errUnreachable stands for the provider's ErrHostUnreachable.
var errUnreachable = errors.New("host unreachable over SSH")

// statsHost answers the node stats command with nodeOutput and err, slowly enough that
// concurrent requests meet; any other command fails.
func statsHost(err error) *fake.Host {
	h := fake.NewHost()
	h.Script(fake.Command{Prefix: "awk ", Run: func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte(nodeOutput), err
	}})
	return h
}

// containerd 1.6 does not implement ListPodSandboxStats, and containerd 2.x fails it for
// Satellite's sandboxes (no cgroup parent): either way the pods come from container stats, and
// the runtime is not asked again at every reading.
func TestStatsFallBackToContainerStats(t *testing.T) {
	t.Parallel()
	for name, sbErr := range map[string]error{
		"containerd 1.6": fmt.Errorf("cri ListPodSandboxStats: unknown method: %w", remote.ErrUnimplemented),
		"containerd 2.x": errors.New(`cri ListPodSandboxStats: failed to decode sandbox container metrics for sandbox "sb-a": cgroupPath is empty (Unknown)`),
	} {
		cri := statsRuntime(podsSample(t0, 3e9), sbErr)
		c := New(Config{NodeName: "n"}, statsHost(nil), cri)
		c.maxAge = 0
		ctx := context.Background()
		for i := 0; i < 3; i++ {
			s, err := c.Summary(ctx)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(s.Pods) != 2 || len(s.Pods[0].Containers) != 2 {
				t.Fatalf("%s: pods %+v", name, s.Pods)
			}
		}
		if s, c := len(cri.CallsOf("ListPodSandboxStats")), len(cri.CallsOf("ListContainerStats")); s != 1 || c != 3 {
			t.Errorf("%s: %d ListPodSandboxStats and %d ListContainerStats for 3 readings, want 1 and 3", name, s, c)
		}
	}

	// A runtime that serves it: pod figures from the pod cgroup.
	c := podsSample(t0, 3e9)
	c.SandboxStats = []*runtimeapi.PodSandboxStats{{Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb-b"}, Linux: &runtimeapi.LinuxPodSandboxStats{
		Cpu: &runtimeapi.CpuUsage{Timestamp: t0.UnixNano(), UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: 9e9}}}}}
	cri := statsRuntime(c, nil)
	s, err := New(Config{NodeName: "n"}, statsHost(nil), cri).Summary(context.Background())
	if err != nil || len(s.Pods) != 1 || *s.Pods[0].CPU.UsageCoreNanoSeconds != 9e9 || len(cri.CallsOf("ListContainerStats")) != 0 {
		t.Errorf("sandbox stats: %+v, %v, %d ListContainerStats", s, err, len(cri.CallsOf("ListContainerStats")))
	}
}

// metrics-server and a scrape of /stats/summary arriving together share one reading.
func TestStatsConcurrentRequestsShareAReading(t *testing.T) {
	t.Parallel()
	host := statsHost(nil)
	cri := statsRuntime(podsSample(t0, 3e9), remote.ErrUnimplemented)
	c := New(Config{NodeName: "n"}, host, cri)
	c.maxAge = time.Minute // however late the goroutines start on a loaded machine
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			mfs, err := c.ResourceMetrics(context.Background())
			if err == nil && metricValues(mfs)["resource_scrape_error"] != 0 {
				err = errors.New("scrape error")
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := c.Summary(context.Background())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(host.Commands()); n != 1 {
		t.Errorf("%d readings of the host for 16 concurrent requests, want 1", n)
	}
}

// A reading that fails is resource_scrape_error 1 on /metrics/resource, as the kubelet
// answers, and an error on /stats/summary; so is a host known to be unreachable, without
// trying.
func TestStatsReadingFails(t *testing.T) {
	t.Parallel()
	host := statsHost(&remote.ExitError{Code: 1, Stderr: "df: /var/lib/containerd: No such file or directory"})
	var down error // the node status's last check: the host can be reached
	c := New(Config{NodeName: "n", HostDown: func() error { return down }}, host, statsRuntime(podsSample(t0, 1), nil))
	c.maxAge = 0
	ctx := context.Background()
	mfs, err := c.ResourceMetrics(ctx)
	if v := metricValues(mfs); err != nil || len(v) != 1 || v["resource_scrape_error"] != 1 {
		t.Errorf("metrics %v, %v; want resource_scrape_error 1 alone", v, err)
	}
	if _, err := c.Summary(ctx); err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Errorf("summary error %v, want the host's", err)
	}
	down = fmt.Errorf("node n: %w", errUnreachable)
	before := len(host.Commands())
	if _, err := c.Summary(ctx); !errors.Is(err, errUnreachable) || len(host.Commands()) != before {
		t.Errorf("host down: %v after %d more commands, want HostDown's error at once", err, len(host.Commands())-before)
	}
	mfs, err = c.ResourceMetrics(ctx)
	if v := metricValues(mfs); err != nil || len(v) != 1 || v["resource_scrape_error"] != 1 {
		t.Errorf("host down: metrics %v, %v; want resource_scrape_error 1 alone", v, err)
	}
	var _ *statsapi.Summary // the summary type the kubelet API serves
}
