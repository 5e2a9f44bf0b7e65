package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/satellite-vk/satellite/remote"
)

// serveHealth serves /healthz (the process serves HTTP), /readyz (the node is registered and
// its kubelet API is serving) and /metrics (Prometheus) until ctx ends. These are what the
// probes of Satellite's own pod and a ServiceMonitor read; none of them reveals a secret, so
// they are not authenticated. The kubelet API, which can run commands on the host, is.
// extra are further collectors (ownMetrics).
func serveHealth(ctx context.Context, addr string, ready <-chan struct{}, host *remote.Host, rt *remote.Runtime, api *atomic.Int64, extra ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "satellite_ssh_connected", Help: "1 while the SSH connection to the host is up."}, func() float64 {
			if host.Stats().Connected {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "satellite_ssh_dials_total", Help: "SSH connections opened to the host."}, func() float64 {
			return float64(host.Stats().Dials)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "satellite_ssh_channels", Help: "SSH channels open now (CRI, SFTP, streams, commands)."}, func() float64 {
			return float64(host.Stats().Channels)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "satellite_cri_calls_total", Help: "CRI calls made to the host's containerd."}, func() float64 {
			return float64(rt.Calls())
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "satellite_kubernetes_api_calls_total", Help: "Requests made to the Kubernetes API."}, func() float64 {
			return float64(api.Load())
		}),
	)
	reg.MustRegister(extra...)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-ready:
			fmt.Fprintln(w, "ok")
		default:
			http.Error(w, "node not registered yet", http.StatusServiceUnavailable)
		}
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return serveHTTP(ctx, "--health-address", addr, mux)
}
