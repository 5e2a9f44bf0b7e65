package stats

import (
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"
)

// The kubelet's resource metrics (GET /metrics/resource, what metrics-server reads), with its
// names, help texts (with component-base's stability prefix), types and label names
// (pkg/kubelet/metrics/collectors/resource_metrics.go). scrape_error, deprecated in 1.29 as an
// alpha metric, is hidden by the kubelet since 1.30; resource_scrape_error replaces it.
var (
	nodeCPUUsage        = family("node_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the node in core-seconds", dto.MetricType_COUNTER)
	nodeMemoryUsage     = family("node_memory_working_set_bytes", "[STABLE] Current working set of the node in bytes", dto.MetricType_GAUGE)
	nodeSwapUsage       = family("node_swap_usage_bytes", "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE)
	containerCPUUsage   = family("container_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", dto.MetricType_COUNTER)
	containerMemUsage   = family("container_memory_working_set_bytes", "[STABLE] Current working set of the container in bytes", dto.MetricType_GAUGE)
	containerSwapUsage  = family("container_swap_usage_bytes", "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE)
	containerSwapLimit  = family("container_swap_limit_bytes", "[ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE)
	containerStartTime  = family("container_start_time_seconds", "[STABLE] Start time of the container since unix epoch in seconds", dto.MetricType_GAUGE)
	podCPUUsage         = family("pod_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds", dto.MetricType_COUNTER)
	podMemoryUsage      = family("pod_memory_working_set_bytes", "[STABLE] Current working set of the pod in bytes", dto.MetricType_GAUGE)
	podSwapUsage        = family("pod_swap_usage_bytes", "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE)
	resourceScrapeError = family("resource_scrape_error", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", dto.MetricType_GAUGE)
)

// familyDesc describes one metric family.
type familyDesc struct {
	name, help string
	typ        dto.MetricType
}

func family(name, help string, typ dto.MetricType) familyDesc {
	return familyDesc{name: name, help: help, typ: typ}
}

// resourceMetrics turns a summary into the kubelet's resource metrics, sorted as a
// Prometheus registry sorts them (families by name, series by label values). A nil summary
// is a failed scrape: resource_scrape_error 1 and nothing else, as the kubelet answers.
func resourceMetrics(s *statsapi.Summary) []*dto.MetricFamily {
	b := metricsBuilder{}
	if s == nil {
		b.add(resourceScrapeError, 1, nil, nil)
		return b.families()
	}
	b.add(resourceScrapeError, 0, nil, nil)
	n := s.Node
	if n.CPU != nil && n.CPU.UsageCoreNanoSeconds != nil {
		b.add(nodeCPUUsage, seconds(*n.CPU.UsageCoreNanoSeconds), &n.CPU.Time, nil)
	}
	if n.Memory != nil && n.Memory.WorkingSetBytes != nil {
		b.add(nodeMemoryUsage, float64(*n.Memory.WorkingSetBytes), &n.Memory.Time, nil)
	}
	if n.Swap != nil && n.Swap.SwapUsageBytes != nil {
		b.add(nodeSwapUsage, float64(*n.Swap.SwapUsageBytes), &n.Swap.Time, nil)
	}
	for _, p := range s.Pods {
		for _, c := range p.Containers {
			b.container(p.PodRef, c)
		}
		labels := []string{"namespace", p.PodRef.Namespace, "pod", p.PodRef.Name}
		if p.CPU != nil && p.CPU.UsageCoreNanoSeconds != nil {
			b.add(podCPUUsage, seconds(*p.CPU.UsageCoreNanoSeconds), &p.CPU.Time, labels)
		}
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			b.add(podMemoryUsage, float64(*p.Memory.WorkingSetBytes), &p.Memory.Time, labels)
		}
		if p.Swap != nil && p.Swap.SwapUsageBytes != nil {
			b.add(podSwapUsage, float64(*p.Swap.SwapUsageBytes), &p.Swap.Time, labels)
		}
	}
	return b.families()
}

func seconds(nanos uint64) float64 { return float64(nanos) / float64(time.Second) }

// metricsBuilder collects series by family.
type metricsBuilder struct {
	byName map[string]*dto.MetricFamily
}

// container adds one container's series, as the kubelet's collectContainer* functions do.
func (b *metricsBuilder) container(pod statsapi.PodReference, c statsapi.ContainerStats) {
	labels := []string{"container", c.Name, "namespace", pod.Namespace, "pod", pod.Name}
	if c.StartTime.Unix() > 0 {
		b.add(containerStartTime, float64(c.StartTime.UnixNano())/float64(time.Second), nil, labels)
	}
	if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
		b.add(containerCPUUsage, seconds(*c.CPU.UsageCoreNanoSeconds), &c.CPU.Time, labels)
	}
	if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
		b.add(containerMemUsage, float64(*c.Memory.WorkingSetBytes), &c.Memory.Time, labels)
	}
	if c.Swap == nil {
		return
	}
	var used float64
	if c.Swap.SwapUsageBytes != nil {
		used = float64(*c.Swap.SwapUsageBytes)
		b.add(containerSwapUsage, used, &c.Swap.Time, labels)
	}
	if c.Swap.SwapAvailableBytes != nil {
		b.add(containerSwapLimit, float64(*c.Swap.SwapAvailableBytes)+used, &c.Swap.Time, labels)
	}
}

// add records one series; labels are name, value pairs in name order; a nil time is no
// timestamp.
func (b *metricsBuilder) add(f familyDesc, v float64, at *metav1.Time, labels []string) {
	if b.byName == nil {
		b.byName = map[string]*dto.MetricFamily{}
	}
	mf := b.byName[f.name]
	if mf == nil {
		mf = &dto.MetricFamily{Name: ptr.To(f.name), Help: ptr.To(f.help), Type: f.typ.Enum()}
		b.byName[f.name] = mf
	}
	m := &dto.Metric{}
	for i := 0; i+1 < len(labels); i += 2 {
		m.Label = append(m.Label, &dto.LabelPair{Name: ptr.To(labels[i]), Value: ptr.To(labels[i+1])})
	}
	if f.typ == dto.MetricType_COUNTER {
		m.Counter = &dto.Counter{Value: ptr.To(v)}
	} else {
		m.Gauge = &dto.Gauge{Value: ptr.To(v)}
	}
	if at != nil {
		m.TimestampMs = ptr.To(at.UnixMilli())
	}
	mf.Metric = append(mf.Metric, m)
}

func (b *metricsBuilder) families() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(b.byName))
	for _, mf := range b.byName {
		sort.SliceStable(mf.Metric, func(i, j int) bool { return labelKey(mf.Metric[i]) < labelKey(mf.Metric[j]) })
		out = append(out, mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.Label {
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}
