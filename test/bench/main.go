// Command bench measures Satellite side by side with the reference kubelet in the local
// environment (make dev) and prints two tables: pod startup and the streams (exec round
// trip, time to first log byte, log throughput), then the pods' network (streams each way
// and HTTP round trips, beside the kubelet's pod-to-pod path and a plain SSH channel).
// Figures drift with the machine; compare the ratios, taken in one run.
//
//	go run ./test/bench [-exec 30] [-log-mb 100] [-net-mb 1024] [-only-network] [-rtt=false]
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
	rtt := flag.Bool("rtt", true, "also measure Satellite with 50 ms of round trip to its host")
	netMB := flag.Int("net-mb", 1024, "size of each network stream, MiB (0: no network figures)")
	flag.BoolVar(&onlyNetwork, "only-network", false, "measure only the pods' network")
	flag.Parse()
	if err := run(*execN, *firstN, *logMB, *netMB, *rtt); err != nil {
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

// onlyNetwork skips every figure but the network's.
var onlyNetwork bool

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

func run(execN, firstN, logMB, netMB int, rtt bool) error {
	e, err := loadEnv()
	if err != nil {
		return err
	}
	nodes := []node{{"Satellite", e["SATELLITE_NODE"], ""}, {"kubelet", e["REFERENCE_NODE"], ""}}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	ns = fmt.Sprintf("satellite-bench-%d", time.Now().Unix())
	if _, err := e.kubectl(ctx, "", "create", "namespace", ns); err != nil {
		return err
	}
	defer func() { _, _ = e.kubectl(context.Background(), "", "delete", "namespace", ns, "--wait=false") }()
	p, err := newPods(e)
	if err != nil {
		return err
	}
	var t table
	if !onlyNetwork {
		if err := podFigures(ctx, e, p, nodes, execN, firstN, logMB, &t); err != nil {
			return err
		}
	}
	var nt netTable
	if netMB > 0 {
		log("network")
		hostSSH := e["HOST_SSH"][strings.Index(e["HOST_SSH"], "@")+1:]
		if err := network(ctx, e, p, nodes[0], nodes[1], "", hostSSH, e["HOST_KNOWN_HOSTS"], netMB, true, &nt); err != nil {
			return err
		}
	}
	if rtt {
		if err := farHost(ctx, e, p, nodes[0], nodes[1], logMB, netMB, &t, &nt); err != nil {
			return err
		}
	}
	if !onlyNetwork {
		t.print()
	}
	if netMB > 0 {
		nt.print()
	}
	return nil
}

// podFigures measures pod startup, status propagation, 110 pods and the streams.
func podFigures(ctx context.Context, e env, p *pods, nodes []node, execN, firstN, logMB int, t *table) error {
	for _, n := range nodes {
		log("pod startup on %s", n.label)
		if err := p.startupFigure(ctx, t, "startup, 20 one at a time", n, "seq", 20, false); err != nil {
			return err
		}
		if err := p.startupFigure(ctx, t, "startup, 30 at once", n, "burst", 30, true); err != nil {
			return err
		}
		prop, err := p.propagation(ctx, n, "exit", 10)
		if err != nil {
			return err
		}
		t.dist("status propagation (exit -> API)", n.label, prop)
		if err := p.deleteAll(ctx); err != nil {
			return err
		}
	}
	if err := scale(ctx, e, p, nodes[0], t); err != nil {
		return err
	}
	for _, n := range nodes {
		log("streams on %s", n.label)
		if err := streams(ctx, e, n, "", execN, firstN, logMB, t); err != nil {
			return err
		}
	}
	return nil
}

func log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// scale runs 110 pods on the Satellite node: time until all run, then Satellite's memory, CPU
// and call rates at steady state over 30 s.
func scale(ctx context.Context, e env, p *pods, n node, t *table) error {
	log("110 pods on %s", n.label)
	start := time.Now()
	if err := p.createMany(ctx, n, "scale", 110); err != nil {
		return err
	}
	t.set("110 pods: until all Running", n.label, fmt.Sprintf("%.1f s", time.Since(start).Seconds()))
	time.Sleep(10 * time.Second) // let the burst's work settle
	pid := e["SATELLITE_PID"]
	s0, err := satelliteStats(e)
	if err != nil {
		return err
	}
	_, cpu0 := process(pid)
	const window = 30 * time.Second
	time.Sleep(window)
	rss, cpu1 := process(pid)
	s1, err := satelliteStats(e)
	if err != nil {
		return err
	}
	t.set("110 pods: Satellite RSS", n.label, fmt.Sprintf("%.1f MiB", float64(rss)/1024))
	t.set("110 pods: Satellite CPU, steady state", n.label, fmt.Sprintf("%.2f %% of a core", 100*float64(cpu1-cpu0)/float64(window)))
	t.set("110 pods: CRI calls / API calls per second", n.label, fmt.Sprintf("%.1f / %.1f",
		float64(s1.CRICalls-s0.CRICalls)/window.Seconds(), float64(s1.APICalls-s0.APICalls)/window.Seconds()))
	return p.deleteAll(ctx)
}

// streams measures exec round trips, time to first log byte and log throughput on one node.
func streams(ctx context.Context, e env, n node, prefix string, execN, firstN, logMB int, t *table) error {
	// The log is read whole several times rather than written at 100 MB: a file is rotated at
	// 10 MiB (the kubelet's default, and Satellite's), and kubectl logs reads the current file
	// only. After it, a tick every 100 ms keeps `logs -f --tail=1` answering.
	const chunk = 6000000 // about 8 MB once in the CRI log format
	reads := (logMB*1000000 + chunk - 1) / chunk
	script := logLines(chunk/100) + "; touch /tmp/written; while true; do echo tick; sleep 0.1; done"
	name := "streams-" + strings.ToLower(n.label)
	defer func() { _, _ = e.kubectl(context.Background(), "", "delete", "pod", "-n", ns, name, "--wait=false") }()
	if err := logWriter(ctx, e, n, name, script); err != nil {
		return err
	}
	rtts, err := measure(execN, func() error {
		_, err := e.kubectl(ctx, "", "exec", "-n", ns, name, "--", "true")
		return err
	})
	if err != nil {
		return err
	}
	t.dist(prefix+"exec -- true round trip", n.label, rtts)
	firsts, err := measure(firstN, func() error { return firstByte(ctx, e, name) })
	if err != nil {
		return err
	}
	t.dist(prefix+"time to first log byte", n.label, firsts)
	start := time.Now()
	var size int64
	for i := 0; i < reads; i++ {
		got, err := countLogBytes(ctx, e, name)
		if err != nil {
			return err
		}
		size += got
	}
	secs := time.Since(start).Seconds()
	t.set(prefix+"log throughput (MiB/s)", n.label, fmt.Sprintf("%.1f (%d MB in %.1f s)", float64(size)/secs/(1<<20), size/1000000, secs))
	if n.label == "Satellite" && prefix == "" {
		return fiftyStreams(ctx, e, name, t)
	}
	return nil
}

// logLines is a shell command that writes n numbered lines of 100 bytes to standard output.
func logLines(n int) string {
	return fmt.Sprintf(`awk 'BEGIN { for (i = 0; i < %d; i++) printf "%%08d %%s\n", i, "%s" }'`, n, strings.Repeat("x", 90))
}

// logWriter starts a pod running script, which writes its log and then touches /tmp/written,
// and waits for that file.
func logWriter(ctx context.Context, e env, n node, name, script string) error {
	if _, err := e.kubectl(ctx, podManifest(name, n, script), "apply", "-f", "-"); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, "", "wait", "-n", ns, "--for=condition=Ready", "--timeout=120s", "pod/"+name); err != nil {
		return err
	}
	for {
		if _, err := e.kubectl(ctx, "", "exec", "-n", ns, name, "--", "test", "-e", "/tmp/written"); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// fiftyStreams opens 25 `logs -f` and 25 `exec -i cat` at once and reports how many SSH
// connections and channels Satellite has open while they run.
func fiftyStreams(ctx context.Context, e env, pod string, t *table) error {
	before, err := satelliteStats(e)
	if err != nil {
		return err
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for i := 0; i < 25; i++ {
		for _, args := range [][]string{{"logs", "-f", "--tail=1", "-n", ns, pod}, {"exec", "-i", "-n", ns, pod, "--", "cat"}} {
			c := exec.CommandContext(ctx, e["KUBECTL"], args...)
			c.Env = append(os.Environ(), "KUBECONFIG="+e["KUBECONFIG"])
			if _, err := c.StdinPipe(); err != nil {
				return err
			}
			if err := c.Start(); err != nil {
				return err
			}
			cmds = append(cmds, c)
		}
	}
	var during debugStats
	for i := 0; i < 50; i++ { // until the 25 exec channels are open
		time.Sleep(200 * time.Millisecond)
		if during, err = satelliteStats(e); err != nil {
			return err
		}
		if during.SSH.Channels >= before.SSH.Channels+25 {
			break
		}
	}
	t.set("50 concurrent streams: SSH connections / channels", "Satellite", fmt.Sprintf("%d / %d",
		1+during.SSH.Dials-before.SSH.Dials, during.SSH.Channels))
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
	return d, nil
}

func sortDurations(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

func pct(d []time.Duration, p int) time.Duration {
	i := (len(d)*p + 99) / 100
	return d[min(max(i-1, 0), len(d)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

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
