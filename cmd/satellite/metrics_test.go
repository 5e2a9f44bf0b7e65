package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/remote"
)

type fakeNode struct {
	phases map[corev1.PodPhase]int
	gpus   []gpu.Usage
}

func (f fakeNode) PodPhases() map[corev1.PodPhase]int { return f.phases }
func (f fakeNode) GPUUsage() []gpu.Usage              { return f.gpus }

// What Prometheus scrapes from Satellite's /metrics: pods by phase (every phase, zeros too),
// the GPUs' usage as ratios and bytes (unknown figures left out), CRI latency and errors by
// method, the SSH round trip, and no reconnect before a connection was ever opened.
func TestOwnMetrics(t *testing.T) {
	t.Parallel()
	m := newOwnMetrics()
	m.observeRTT(3 * time.Millisecond)
	m.observeCRI("ListContainers", 20*time.Millisecond, nil)
	m.observeCRI("ListContainers", 40*time.Millisecond, nil)
	m.observeCRI("StartContainer", time.Second, errors.New("boom"))
	node := fakeNode{
		phases: map[corev1.PodPhase]int{corev1.PodRunning: 3, corev1.PodFailed: 1},
		gpus: []gpu.Usage{
			{Index: 0, UUID: "GPU-aa", UtilizationPercent: 97, MemoryUsedMiB: 1024, MemoryTotalMiB: 81920},
			{Index: 1, UUID: "GPU-bb", UtilizationPercent: -1, MemoryUsedMiB: -1, MemoryTotalMiB: 81920},
		},
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := remote.LoadSigner(writeKey(t))
	if err != nil {
		t.Fatal(err)
	}
	host, err := remote.NewHost(remote.Config{Addr: "127.0.0.1:1", User: "root", Signer: signer, KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.collectors(host, node)...)
	want := `
# HELP satellite_pods Pods on the node by the phase Satellite last reported.
# TYPE satellite_pods gauge
satellite_pods{phase="Failed"} 1
satellite_pods{phase="Pending"} 0
satellite_pods{phase="Running"} 3
satellite_pods{phase="Succeeded"} 0
satellite_pods{phase="Unknown"} 0
# HELP satellite_gpu_utilization_ratio Share of the last sample period in which a kernel ran on the GPU (nvidia-smi utilization.gpu), read every minute.
# TYPE satellite_gpu_utilization_ratio gauge
satellite_gpu_utilization_ratio{gpu="0",uuid="GPU-aa"} 0.97
# HELP satellite_gpu_memory_used_bytes GPU memory in use (nvidia-smi memory.used), read every minute.
# TYPE satellite_gpu_memory_used_bytes gauge
satellite_gpu_memory_used_bytes{gpu="0",uuid="GPU-aa"} 1.073741824e+09
# HELP satellite_gpu_memory_total_bytes GPU memory (nvidia-smi memory.total).
# TYPE satellite_gpu_memory_total_bytes gauge
satellite_gpu_memory_total_bytes{gpu="0",uuid="GPU-aa"} 8.589934592e+10
satellite_gpu_memory_total_bytes{gpu="1",uuid="GPU-bb"} 8.589934592e+10
# HELP satellite_cri_call_errors_total Unary CRI calls to the host's containerd that failed, by method.
# TYPE satellite_cri_call_errors_total counter
satellite_cri_call_errors_total{method="StartContainer"} 1
# HELP satellite_ssh_reconnects_total SSH connections opened to the host after the first: each follows a dropped one.
# TYPE satellite_ssh_reconnects_total counter
satellite_ssh_reconnects_total 0
`
	names := []string{"satellite_pods", "satellite_gpu_utilization_ratio", "satellite_gpu_memory_used_bytes", "satellite_gpu_memory_total_bytes",
		"satellite_cri_call_errors_total", "satellite_ssh_reconnects_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.criLatency); n != 2 {
		t.Errorf("CRI latency series: %d, want one per method (2)", n)
	}
	if n := testutil.CollectAndCount(m.sshRTT); n != 1 {
		t.Errorf("SSH round trip series: %d, want 1", n)
	}
	lint, err := testutil.GatherAndLint(reg)
	if err != nil || len(lint) > 0 {
		t.Errorf("metric lint: %v %+v", err, lint)
	}
}

// writeKey writes a new ed25519 private key in OpenSSH's format and returns its path.
func writeKey(t *testing.T) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
