// Command bench measures Satellite's streams side by side with the reference kubelet in the
// local environment (make dev) and prints one table: exec round trip, time to first log byte
// and log throughput. Figures drift with the machine; compare the ratios, taken in one run.
//
//	go run ./test/bench [-exec 30] [-log-mb 100]
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	execN := flag.Int("exec", 30, "exec round trips per node")
	firstN := flag.Int("first-byte", 20, "first-log-byte measurements per node")
	logMB := flag.Int("log-mb", 100, "size of the log read for throughput, MB")
	flag.Parse()
	if err := run(*execN, *firstN, *logMB); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type node struct {
	label, name, toleration string
}

type env map[string]string

func loadEnv() (env, error) {
	path := os.Getenv("SATELLITE_DEV_ENV")
	if path == "" {
		path = filepath.Join("_output", "dev", "env")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no local environment (%w): run make dev", err)
	}
	e := env{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && !strings.HasPrefix(k, "#") {
			e[k] = v
		}
	}
	return e, nil
}

func (e env) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e["KUBECTL"], args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e["KUBECONFIG"])
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

const image = "localhost/satellite/busybox:1.36"

// ns is the benchmark's own namespace, deleted at the end.
var ns string

func podManifest(name string, n node, script string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  nodeSelector: {kubernetes.io/hostname: %s}
  tolerations: [{operator: Exists}]
  containers:
  - name: main
    image: %s
    command: [sh, -c, %q]
`, name, ns, n.name, image, script)
}

func run(execN, firstN, logMB int) error {
	e, err := loadEnv()
	if err != nil {
		return err
	}
	nodes := []node{{"Satellite", e["SATELLITE_NODE"], ""}, {"kubelet", e["REFERENCE_NODE"], ""}}
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	ns = fmt.Sprintf("satellite-bench-%d", time.Now().Unix())
	_, _ = e.kubectl(ctx, "", "create", "namespace", ns)
	defer func() { _, _ = e.kubectl(context.Background(), "", "delete", "namespace", ns, "--wait=false") }()

	// The log is read whole several times rather than written at 100 MB: a file is rotated at
	// 10 MiB (the kubelet's default, and Satellite's), and kubectl logs reads the current file
	// only. After it, a tick every 100 ms keeps `logs -f --tail=1` answering.
	const chunk = 6000000 // about 8 MB once in the CRI log format
	reads := (logMB*1000000 + chunk - 1) / chunk
	script := fmt.Sprintf(`awk 'BEGIN { for (i = 0; i < %d; i++) printf "%%08d %%s\n", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" }'; touch /tmp/written; while true; do echo tick; sleep 0.1; done`, chunk/100)
	results := map[string]map[string]string{}
	for i, n := range nodes {
		name := fmt.Sprintf("bench-%d", i)
		if _, err := e.kubectl(ctx, podManifest(name, n, script), "apply", "-f", "-"); err != nil {
			return err
		}
		if _, err := e.kubectl(ctx, "", "wait", "-n", ns, "--for=condition=Ready", "--timeout=120s", "pod/"+name); err != nil {
			return err
		}
		for {
			if _, err := e.kubectl(ctx, "", "exec", "-n", ns, name, "--", "test", "-e", "/tmp/written"); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		r := map[string]string{}
		rtts, err := measure(execN, func() error {
			_, err := e.kubectl(ctx, "", "exec", "-n", ns, name, "--", "true")
			return err
		})
		if err != nil {
			return err
		}
		r["exec p50"], r["exec p99"] = ms(pct(rtts, 50)), ms(pct(rtts, 99))
		firsts, err := measure(firstN, func() error { return firstByte(ctx, e, name) })
		if err != nil {
			return err
		}
		r["first log byte p50"], r["first log byte p99"] = ms(pct(firsts, 50)), ms(pct(firsts, 99))
		start := time.Now()
		var size int64
		for i := 0; i < reads; i++ {
			n, err := countLogBytes(ctx, e, name)
			if err != nil {
				return err
			}
			size += n
		}
		secs := time.Since(start).Seconds()
		r["log throughput"] = fmt.Sprintf("%.1f MiB/s (%d MB in %.1fs)", float64(size)/secs/(1<<20), size/1000000, secs)
		r["_tput"] = fmt.Sprintf("%f", float64(size)/secs)
		results[n.label] = r
		_, _ = e.kubectl(ctx, "", "delete", "pod", "-n", ns, name, "--wait=false")
	}
	rows := []string{"exec p50", "exec p99", "first log byte p50", "first log byte p99", "log throughput"}
	fmt.Printf("\n%-22s | %-28s | %-28s\n", "figure", "Satellite", "kubelet (reference)")
	fmt.Println(strings.Repeat("-", 84))
	for _, row := range rows {
		fmt.Printf("%-22s | %-28s | %-28s\n", row, results["Satellite"][row], results["kubelet"][row])
	}
	fmt.Printf("\nratios (Satellite / kubelet): exec p50 %s, first byte p50 %s, log throughput %s\n",
		ratio(results, "exec p50"), ratio(results, "first log byte p50"), ratio(results, "_tput"))
	return nil
}

func measure(n int, f func() error) ([]time.Duration, error) {
	var d []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d, nil
}

func pct(d []time.Duration, p int) time.Duration {
	i := (len(d)*p + 99) / 100
	return d[min(max(i-1, 0), len(d)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func ratio(r map[string]map[string]string, k string) string {
	var a, b float64
	fmt.Sscanf(r["Satellite"][k], "%f", &a)
	fmt.Sscanf(r["kubelet"][k], "%f", &b)
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// firstByte times kubectl logs -f --tail=1 from start to its first byte.
func firstByte(ctx context.Context, e env, pod string) error {
	cmd := exec.CommandContext(ctx, e["KUBECTL"], "logs", "-f", "--tail=1", "-n", ns, pod)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e["KUBECONFIG"])
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	_, err = bufio.NewReader(out).ReadByte()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return err
}

func countLogBytes(ctx context.Context, e env, pod string) (int64, error) {
	cmd := exec.CommandContext(ctx, e["KUBECTL"], "logs", "-n", ns, pod)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e["KUBECONFIG"])
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, out)
	if werr := cmd.Wait(); err == nil {
		err = werr
	}
	return n, err
}
