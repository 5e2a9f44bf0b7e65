package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// pods measures pod startup as the Kubernetes SLO defines it (create call until a watch sees
// every container running; image present) and status propagation.
type pods struct {
	e      env
	client kubernetes.Interface
}

func newPods(e env) (*pods, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e["KUBECONFIG"])
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &pods{e: e, client: c}, nil
}

func (p *pods) pod(name string, n node, script string, policy corev1.RestartPolicy) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			HostNetwork:                   true,
			NodeName:                      n.name,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []corev1.Container{{Name: "main", Image: image, Command: []string{"sh", "-c", script}}},
		},
	}
}

// startup creates count pods, concurrently or one after another, and returns each one's time
// from its create call until the watch saw all its containers running.
func (p *pods) startup(ctx context.Context, n node, prefix string, count int, together bool) ([]time.Duration, error) {
	w, err := p.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	st := &startTimes{created: map[string]time.Time{}, seen: map[string]time.Duration{}, done: make(chan string, count)}
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		st.follow(w)
	}()
	defer func() {
		w.Stop()
		<-followed
	}()
	create := func(i int) error {
		name := fmt.Sprintf("%s-%d", prefix, i)
		st.create(name)
		_, err := p.client.CoreV1().Pods(ns).Create(ctx, p.pod(name, n, "exec sleep 3600", corev1.RestartPolicyAlways), metav1.CreateOptions{})
		return err
	}
	for i := 0; i < count; i++ {
		if together {
			go func() { _ = create(i) }()
			continue
		}
		if err := create(i); err != nil {
			return nil, err
		}
		select {
		case <-st.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if together {
		if err := st.wait(ctx, count); err != nil {
			return nil, err
		}
	}
	return st.durations(), nil
}

// startTimes are the pods' start times: from the create call until a watch saw all the pod's
// containers running.
type startTimes struct {
	mu      sync.Mutex
	created map[string]time.Time
	seen    map[string]time.Duration
	done    chan string // a pod's name, once seen running
}

func (s *startTimes) create(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created[name] = time.Now()
}

// follow records the pods the watch shows running, until it is stopped.
func (s *startTimes) follow(w watch.Interface) {
	for ev := range w.ResultChan() {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok || ev.Type == watch.Deleted || !allRunning(pod) {
			continue
		}
		s.mu.Lock()
		if t, ok := s.created[pod.Name]; ok {
			if _, dup := s.seen[pod.Name]; !dup {
				s.seen[pod.Name] = time.Since(t)
				s.done <- pod.Name
			}
		}
		s.mu.Unlock()
	}
}

// wait returns once count pods were seen running.
func (s *startTimes) wait(ctx context.Context, count int) error {
	for seen := 0; seen < count; seen++ {
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods running: %w", seen, count, ctx.Err())
		}
	}
	return nil
}

func (s *startTimes) durations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]time.Duration, 0, len(s.seen))
	for _, d := range s.seen {
		out = append(out, d)
	}
	return out
}

// createMany creates count pods at once and returns when a list shows all of them running.
func (p *pods) createMany(ctx context.Context, n node, prefix string, count int) error {
	errs := make(chan error, count)
	for i := 0; i < count; i++ {
		go func() {
			_, err := p.client.CoreV1().Pods(ns).Create(ctx, p.pod(fmt.Sprintf("%s-%d", prefix, i), n, "exec sleep 3600", corev1.RestartPolicyAlways), metav1.CreateOptions{})
			errs <- err
		}()
	}
	for i := 0; i < count; i++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	for {
		l, err := p.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		running := 0
		for i := range l.Items {
			if strings.HasPrefix(l.Items[i].Name, prefix+"-") && allRunning(&l.Items[i]) {
				running++
			}
		}
		if running == count {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods running: %w", running, count, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startupFigure measures startup (see startup) into the table's row, then removes the pods.
func (p *pods) startupFigure(ctx context.Context, t *table, row string, n node, prefix string, count int, together bool) error {
	d, err := p.startup(ctx, n, prefix, count, together)
	if err != nil {
		return err
	}
	t.dist(row, n.label, d)
	return p.deleteAll(ctx)
}

func allRunning(p *corev1.Pod) bool {
	if len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return true
}

// propagation runs pods whose container prints the kernel's uptime and exits, and returns,
// per pod, the time from that exit until a watch sees the container terminated. The host,
// Satellite and this program share the machine's clock.
func (p *pods) propagation(ctx context.Context, n node, prefix string, count int) ([]time.Duration, error) {
	var out []time.Duration
	for i := 0; i < count; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		w, err := p.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			return nil, err
		}
		if _, err := p.client.CoreV1().Pods(ns).Create(ctx, p.pod(name, n, "sleep 1; cat /proc/uptime", corev1.RestartPolicyNever), metav1.CreateOptions{}); err != nil {
			w.Stop()
			return nil, err
		}
		var seenAt float64
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if ok && len(pod.Status.ContainerStatuses) == 1 && pod.Status.ContainerStatuses[0].State.Terminated != nil {
				seenAt = uptime()
				break
			}
		}
		w.Stop()
		logs, err := p.e.kubectl(ctx, "", "logs", "-n", ns, name)
		if err != nil {
			return nil, err
		}
		exitAt, err := strconv.ParseFloat(strings.Fields(logs + " x")[0], 64)
		if err != nil {
			return nil, fmt.Errorf("pod %s printed %q", name, logs)
		}
		out = append(out, time.Duration((seenAt-exitAt)*float64(time.Second)))
	}
	return out, nil
}

func uptime() float64 {
	b, _ := os.ReadFile("/proc/uptime")
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

// deleteAll deletes the benchmark's pods and waits until the API has none and no containerd
// of the environment runs anything: a node still tearing pods down would slow the next
// figure, whichever node it is taken on.
func (p *pods) deleteAll(ctx context.Context) error {
	zero := int64(0)
	if err := p.client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		return err
	}
	for {
		l, err := p.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 && p.quiet(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// quiet reports whether the host's and the reference node's containerds run no task (the
// environment runs no pod of its own there).
func (p *pods) quiet(ctx context.Context) bool {
	for _, sock := range []string{p.e["HOST_CONTAINERD_SOCKET"], p.e["REFERENCE_CONTAINERD_SOCKET"]} {
		out, err := exec.CommandContext(ctx, p.e["CTR"], "-a", sock, "-n", "k8s.io", "tasks", "ls").Output()
		if err != nil || strings.Contains(string(out), "RUNNING") {
			return false
		}
	}
	return true
}

// process reads a process's resident memory and CPU time from /proc.
func process(pid string) (rssKiB int64, cpu time.Duration) {
	status, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			rssKiB, _ = strconv.ParseInt(strings.Fields(l)[1], 10, 64)
		}
	}
	stat, _ := os.ReadFile("/proc/" + pid + "/stat")
	f := strings.Fields(string(stat)[strings.LastIndexByte(string(stat), ')')+2:])
	if len(f) > 12 {
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	}
	return rssKiB, cpu
}

type debugStats struct {
	Goroutines int   `json:"goroutines"`
	CRICalls   int64 `json:"cri_calls"`
	APICalls   int64 `json:"api_calls"`
	SSH        struct {
		Dials    int64 `json:"dials"`
		Channels int64 `json:"channels"`
	} `json:"ssh"`
}

func satelliteStats(e env) (debugStats, error) {
	var s debugStats
	resp, err := http.Get("http://" + e["SATELLITE_DEBUG"] + "/debug/satellite")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
