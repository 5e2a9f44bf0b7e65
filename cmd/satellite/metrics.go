package main

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/remote"
)

// ownMetrics are the metrics of Satellite itself that are observed as things happen: the SSH
// link's round trip and CRI call latencies. remote reports them through plain hooks
// (remote.Config.RoundTrip, remote.RuntimeConfig.ObserveCall); Prometheus stays in cmd.
type ownMetrics struct {
	sshRTT     prometheus.Histogram
	criLatency *prometheus.HistogramVec
	criErrors  *prometheus.CounterVec
}

func newOwnMetrics() *ownMetrics {
	return &ownMetrics{
		sshRTT: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "satellite_ssh_round_trip_seconds",
			Help:    "Round trip of the SSH keepalive (keepalive@openssh.com) to the host, every 10 s and at each node status check.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15), // 0.5 ms to 8 s
		}),
		// The kubelet's kubelet_runtime_operations_duration_seconds buckets: 5 ms to ~1.5 h.
		criLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "satellite_cri_call_duration_seconds",
			Help:    "Duration of unary CRI calls to the host's containerd through the SSH connection, by method.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 14),
		}, []string{"method"}),
		criErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "satellite_cri_call_errors_total",
			Help: "Unary CRI calls to the host's containerd that failed, by method.",
		}, []string{"method"}),
	}
}

func (m *ownMetrics) observeRTT(d time.Duration) { m.sshRTT.Observe(d.Seconds()) }

func (m *ownMetrics) observeCRI(method string, d time.Duration, err error) {
	m.criLatency.WithLabelValues(method).Observe(d.Seconds())
	if err != nil {
		m.criErrors.WithLabelValues(method).Inc()
	}
}

// nodeGauges is what the provider tells of its node at scrape time.
type nodeGauges interface {
	PodPhases() map[corev1.PodPhase]int
	GPUUsage() []gpu.Usage
}

// collectors are ownMetrics' collectors and those read at each scrape: SSH reconnects and
// the last round trip, pods by phase, and the GPUs' usage.
func (m *ownMetrics) collectors(host *remote.Host, node nodeGauges) []prometheus.Collector {
	return []prometheus.Collector{
		m.sshRTT, m.criLatency, m.criErrors,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "satellite_ssh_reconnects_total", Help: "SSH connections opened to the host after the first: each follows a dropped one."}, func() float64 {
			return float64(max(host.Stats().Dials-1, 0))
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "satellite_ssh_last_round_trip_seconds", Help: "Round trip of the last answered SSH keepalive (0 before the first)."}, func() float64 {
			return host.Stats().RoundTrip.Seconds()
		}),
		podPhases{node},
		gpuUsage{node},
	}
}

var podPhaseDesc = prometheus.NewDesc("satellite_pods", "Pods on the node by the phase Satellite last reported.", []string{"phase"}, nil)

// podPhases reports every phase, 0 included, so that a phase emptied reads 0 and not absent.
type podPhases struct{ node nodeGauges }

func (c podPhases) Describe(ch chan<- *prometheus.Desc) { ch <- podPhaseDesc }

func (c podPhases) Collect(ch chan<- prometheus.Metric) {
	n := c.node.PodPhases()
	for _, ph := range []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown} {
		ch <- prometheus.MustNewConstMetric(podPhaseDesc, prometheus.GaugeValue, float64(n[ph]), string(ph))
	}
}

var (
	gpuLabels      = []string{"gpu", "uuid"}
	gpuUtilDesc    = prometheus.NewDesc("satellite_gpu_utilization_ratio", "Share of the last sample period in which a kernel ran on the GPU (nvidia-smi utilization.gpu), read every minute.", gpuLabels, nil)
	gpuMemUsedDesc = prometheus.NewDesc("satellite_gpu_memory_used_bytes", "GPU memory in use (nvidia-smi memory.used), read every minute.", gpuLabels, nil)
	gpuMemDesc     = prometheus.NewDesc("satellite_gpu_memory_total_bytes", "GPU memory (nvidia-smi memory.total).", gpuLabels, nil)
)

// gpuUsage reports the host's GPUs as nvidia-smi last described them; what it did not know
// ([N/A]) is left out.
type gpuUsage struct{ node nodeGauges }

func (c gpuUsage) Describe(ch chan<- *prometheus.Desc) {
	ch <- gpuUtilDesc
	ch <- gpuMemUsedDesc
	ch <- gpuMemDesc
}

func (c gpuUsage) Collect(ch chan<- prometheus.Metric) {
	const mib = 1 << 20
	for _, g := range c.node.GPUUsage() {
		idx := strconv.Itoa(g.Index)
		if g.UtilizationPercent >= 0 {
			ch <- prometheus.MustNewConstMetric(gpuUtilDesc, prometheus.GaugeValue, float64(g.UtilizationPercent)/100, idx, g.UUID)
		}
		if g.MemoryUsedMiB >= 0 {
			ch <- prometheus.MustNewConstMetric(gpuMemUsedDesc, prometheus.GaugeValue, float64(g.MemoryUsedMiB)*mib, idx, g.UUID)
		}
		if g.MemoryTotalMiB >= 0 {
			ch <- prometheus.MustNewConstMetric(gpuMemDesc, prometheus.GaugeValue, float64(g.MemoryTotalMiB)*mib, idx, g.UUID)
		}
	}
}
