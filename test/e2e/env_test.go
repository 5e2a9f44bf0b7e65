package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// env is the local environment as _output/dev/env describes it.
type env struct {
	vars   map[string]string
	client kubernetes.Interface
}

// target is one Satellite node under test, with what is needed to inspect its host.
type target struct {
	name   string // test name
	node   string
	socket string // containerd socket on the host
	logDir string // pod log directory on the host
	podDir string // pods' volume directories on the host
	taints []string
	// reference is the real kubelet's node: there is no Satellite host to inspect.
	reference bool
	debug     string // Satellite's debug address
}

func loadEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped under -short")
	}
	path := os.Getenv("SATELLITE_DEV_ENV")
	if path == "" {
		path = filepath.Join("..", "..", "_output", "dev", "env")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no local environment: %v; run `make dev` first (or `make test`, which does)", err)
	}
	defer f.Close()
	e := &env{vars: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			e.vars[k] = v
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.get(t, "KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	// The suites run many pods at once: client-go's default 5 requests a second would make
	// them wait on themselves.
	cfg.QPS, cfg.Burst = 50, 100
	if e.client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) get(t *testing.T, k string) string {
	t.Helper()
	v, ok := e.vars[k]
	if !ok || v == "" {
		t.Fatalf("the environment file has no %s", k)
	}
	return v
}

// targets are the Satellite nodes every core test runs against: the node on containerd 2.x
// and, for compatibility with the older containerd rented hosts often run, the node on
// Debian's containerd 1.6.
func (e *env) targets(t *testing.T) []target {
	return []target{
		{name: "containerd2", node: e.get(t, "SATELLITE_NODE"), socket: e.get(t, "HOST_CONTAINERD_SOCKET"), logDir: e.get(t, "HOST_POD_LOG_DIR"), podDir: e.get(t, "HOST_POD_DIR"), debug: e.get(t, "SATELLITE_DEBUG"),
			taints: []string{"virtual-kubelet.io/provider=satellite:NoSchedule"}},
		{name: "containerd1.6", node: e.get(t, "SATELLITE_COMPAT_NODE"), socket: e.get(t, "HOST_COMPAT_CONTAINERD_SOCKET"), logDir: e.get(t, "HOST_COMPAT_POD_LOG_DIR"), podDir: e.get(t, "HOST_COMPAT_POD_DIR"), debug: e.get(t, "SATELLITE_COMPAT_DEBUG"),
			taints: []string{"virtual-kubelet.io/provider=satellite:NoSchedule", "satellite.dev/compat=containerd-1.6:NoSchedule"}},
	}
}

// streamTargets are the Satellite nodes and the reference kubelet's node, for the tests whose
// output must be the same on all of them.
func (e *env) streamTargets(t *testing.T) []target {
	return append(e.targets(t), target{name: "kubelet", node: e.get(t, "REFERENCE_NODE"),
		taints: []string{"reference=true:NoSchedule"}, reference: true})
}

// kubectl runs the environment's kubectl and returns its standard output; on failure the
// error carries standard error.
func (e *env) kubectl(ctx context.Context, t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// mustKubectl is kubectl that fails the test on error.
func (e *env) mustKubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := e.kubectl(ctx, t, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
