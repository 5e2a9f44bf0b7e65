package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The differential suite (issue 3): each case runs the same pod on the reference kubelet's
// node and on both Satellite nodes, at once, and compares what a user sees of it: the phase,
// the conditions, every container's state, last state, ready and started, restart counts
// (within one), the reasons of the pod's events, and, where the case asks, the containers'
// logs and the output of a command run in the pod. Where Satellite differs by design, the
// case names the item and says why; that item is then printed, not compared.

// diffCase is one pod of the suite.
type diffCase struct {
	name   string
	policy corev1.RestartPolicy
	script string // the main container's shell script
	// edit changes the pod after tg.pod made it.
	edit func(p *corev1.Pod, fx diffFixture)
	// pre, when set, is a pod run to completion on the same node before the case's pod.
	pre func(fx diffFixture) *corev1.Pod
	// until says when the pod shows what the case is about; default: Succeeded or Failed.
	until func(*corev1.Pod) bool
	// then, when set, acts on the pod once until holds (as another controller would), and
	// after is the state to compare in then.
	then  func(fx diffFixture, pod *corev1.Pod) error
	after func(*corev1.Pod) bool
	// events are reasons to wait for before the comparison.
	events []string
	// logs compares the logs of every container; exec runs a command in the main container
	// once until holds and compares its output.
	logs bool
	exec []string
	// waiting compares the message of every waiting container too (the reason always is).
	waiting bool
	// differs names the items Satellite shows otherwise by design, with why: an item ("events",
	// "container main"), an item on one target ("containerd1.6/message main"), or one event
	// ("event Warning Unhealthy"), which is then left out of the events compared.
	differs map[string]string
	timeout time.Duration // for until; default 90 s
}

// diffFixture is what a case's pod may depend on, per target.
type diffFixture struct {
	tg   target
	ns   string
	port int32 // a port for the case alone on this target's network
	e    *env
}

// diffTarget is one target's share of the suite: its namespace and its host.
type diffTarget struct {
	tg target
	ns string
	h  *host
}

func TestIntegrationDifferential(t *testing.T) {
	e := loadEnv(t)
	runDiffSuite(t, e, "differential suite", diffCases(e, t))
}

// runDiffSuite runs cases on the reference kubelet's node and on both Satellite nodes, each
// in a namespace of its own with the suite's objects, and reports every item that differs.
func runDiffSuite(t *testing.T, e *env, suite string, cases []diffCase) {
	var targets []diffTarget
	for _, tg := range e.streamTargets(t) {
		dt := diffTarget{tg: tg, ns: e.namespace(t), h: e.host(t, tg)}
		e.diffObjects(t, dt.ns)
		targets = append(targets, dt)
	}
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("two cases named %s", c.name)
		}
		names[c.name] = true
	}
	// Cases run six at a time (18 pods): the host, the reference node and the control plane
	// share two cores.
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var compared, differ int
	var failures []string // the failed cases' problems, repeated at the end where a log's tail shows them
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var problems []string
			ok := t.Run(c.name, func(t *testing.T) {
				var n, d int
				n, d, problems = runDiffCase(t, e, targets, c, int32(20000+10*i))
				mu.Lock()
				compared, differ = compared+n, differ+d
				mu.Unlock()
			})
			if !ok && len(problems) == 0 {
				problems = []string{"failed (its output says how)"}
			}
			mu.Lock()
			for _, p := range problems {
				failures = append(failures, c.name+": "+p)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, dt := range targets {
		e.assertNamespaceClean(t, dt)
	}
	t.Logf("%s: %d cases, %d items compared with the kubelet's node on %d Satellite nodes, %d items differing by design",
		suite, len(cases), compared, len(targets)-1, differ)
	if len(failures) > 0 {
		sort.Strings(failures)
		t.Errorf("%d problem(s) in the %s:\n%s", len(failures), suite, strings.Join(failures, "\n"))
	}
}

// runDiffCase runs one case on every target and compares; it returns how many items were
// compared, how many were left out by design, and the problems found.
func runDiffCase(t *testing.T, e *env, targets []diffTarget, c diffCase, portBase int32) (compared, byDesign int, problems []string) {
	if c.policy == "" {
		c.policy = corev1.RestartPolicyNever
	}
	if c.until == nil {
		c.until = func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		}
	}
	if c.timeout == 0 {
		c.timeout = 90 * time.Second
	}
	pods := make([]*corev1.Pod, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, dt := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fx := diffFixture{tg: dt.tg, ns: dt.ns, port: portFor(dt.tg, portBase), e: e}
			pods[i], errs[i] = e.startDiffPod(t, c, fx)
		}()
	}
	wg.Wait()
	defer func() {
		for i, dt := range targets {
			if pods[i] != nil {
				_ = e.client.CoreV1().Pods(dt.ns).Delete(context.Background(), pods[i].Name, metav1.DeleteOptions{})
			}
		}
		for i, dt := range targets {
			if pods[i] != nil {
				e.deletePod(t, dt.ns, pods[i].Name)
				e.assertClean(t, dt.h, dt.ns, pods[i].Name, pods[i].UID)
			}
		}
	}()
	for i, err := range errs {
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", targets[i].tg.name, err))
			t.Error(problems[len(problems)-1])
		}
	}
	if len(problems) > 0 {
		return 0, 0, problems
	}

	// Compare until every node shows what the kubelet's shows, for up to 20 s: the nodes
	// reach the same state at slightly different moments.
	var views []map[string]string
	deadline := time.Now().Add(20 * time.Second)
	for {
		views = make([]map[string]string, len(targets))
		for i, dt := range targets {
			views[i] = e.diffView(t, c, dt, pods[i])
		}
		if len(diffProblems(c, targets, views)) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	problems = diffProblems(c, targets, views)
	for _, p := range problems {
		t.Error(p)
	}
	for item, why := range c.differs {
		for i, dt := range targets {
			key := strings.TrimPrefix(item, dt.tg.name+"/")
			if strings.HasPrefix(item, "event ") {
				key = "events"
			}
			if v, ok := views[i][key]; ok {
				t.Logf("differs by design: %s on %s: %q (%s)", item, dt.tg.name, v, why)
			}
		}
	}
	return len(views[0]) * (len(targets) - 1), len(c.differs) * (len(targets) - 1), problems
}

// startDiffPod creates the case's pod (after its pre pod, if any) and waits for until and for
// the case's events; it returns the pod as it was then.
func (e *env) startDiffPod(t *testing.T, c diffCase, fx diffFixture) (*corev1.Pod, error) {
	ctx := context.Background()
	pods := e.client.CoreV1().Pods(fx.ns)
	if c.pre != nil {
		pre := c.pre(fx)
		pre.Name = "pre-" + c.name
		if _, err := pods.Create(ctx, pre, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		_, err := e.pollPod(fx.ns, pre.Name, c.timeout, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		if err != nil {
			return nil, fmt.Errorf("pre pod: %w", err)
		}
		if err := pods.Delete(ctx, pre.Name, metav1.DeleteOptions{}); err != nil {
			return nil, err
		}
		if err := e.pollGone(fx.ns, pre.Name, 60*time.Second); err != nil {
			return nil, fmt.Errorf("pre pod: %w", err)
		}
	}
	pod := fx.tg.pod(c.name, c.policy, c.script)
	if c.edit != nil {
		c.edit(pod, fx)
	}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	got, err := e.pollPod(fx.ns, pod.Name, c.timeout, c.until)
	if err != nil {
		return created, err
	}
	if c.then != nil {
		if err := c.then(fx, got); err != nil {
			return created, err
		}
		if got, err = e.pollPod(fx.ns, pod.Name, c.timeout, c.after); err != nil {
			return created, err
		}
	}
	for _, reason := range c.events {
		if err := e.pollEvent(fx.ns, pod.Name, reason, 60*time.Second); err != nil {
			return created, err
		}
	}
	return got, nil
}

// pollPod waits for cond; the error says what the pod showed last.
func (e *env) pollPod(ns, name string, timeout time.Duration, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last *corev1.Pod
	for {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if cond(p) {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return nil, fmt.Errorf("pod %s/%s: not seen in %v", ns, name, timeout)
			}
			return last, fmt.Errorf("pod %s/%s: not in the case's state after %v; last: %s", ns, name, timeout, summarize(last))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// assertNamespaceClean fails unless the target's host has no sandbox, container, log or
// volume directory of the namespace's pods left.
func (e *env) assertNamespaceClean(t *testing.T, dt diffTarget) {
	t.Helper()
	if dt.h == nil {
		return
	}
	var left []string
	e.waitFor(t, 30*time.Second, "nothing of namespace "+dt.ns+" on the host of "+dt.tg.name, func(ctx context.Context) (bool, error) {
		left = nil
		sel := map[string]string{"io.kubernetes.pod.namespace": dt.ns}
		sbs, err := dt.h.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
		if err != nil {
			return false, err
		}
		for _, s := range sbs.Items {
			left = append(left, "sandbox "+s.Metadata.GetName())
		}
		cs, err := dt.h.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
		if err != nil {
			return false, err
		}
		for _, c := range cs.Containers {
			left = append(left, "container "+c.Metadata.GetName())
		}
		out, err := dt.h.Output(ctx, fmt.Sprintf("ls -d %s/%s_* %s/%s_* 2>/dev/null || true", dt.tg.logDir, dt.ns, dt.tg.podDir, dt.ns))
		if err != nil {
			return false, err
		}
		left = append(left, strings.Fields(string(out))...)
		return len(left) == 0, nil
	})
	t.Logf("%s: nothing of the suite's pods left on the host", dt.tg.name)
}

// pollGone waits until the API no longer has the pod.
func (e *env) pollGone(ns, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s still there %v after its deletion", ns, name, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (e *env) pollEvent(ns, pod, reason string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		evs, err := e.events(ctx, ns, pod, reason)
		if err == nil && len(evs) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s: no %s event in %v", ns, pod, reason, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// summarize is a pod's phase and container states in one line.
func summarize(p *corev1.Pod) string {
	var parts []string
	parts = append(parts, string(p.Status.Phase))
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range list {
			parts = append(parts, s.Name+": "+stateString(s.State)+" restarts="+strconv.Itoa(int(s.RestartCount)))
		}
	}
	return strings.Join(parts, "; ")
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "waiting " + s.Waiting.Reason
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		out := fmt.Sprintf("terminated %s exit %d", s.Terminated.Reason, s.Terminated.ExitCode)
		if s.Terminated.Signal != 0 {
			out += fmt.Sprintf(" signal %d", s.Terminated.Signal)
		}
		return out
	}
	return "none"
}

// diffView is what a user sees of the pod now, by item, with what differs between nodes by
// construction (namespace, UID, node name, addresses, the case's port) replaced by names.
func (e *env) diffView(t *testing.T, c diffCase, dt diffTarget, pod *corev1.Pod) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := map[string]string{}
	p, err := e.client.CoreV1().Pods(dt.ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		v["error"] = err.Error()
		return v
	}
	norm := func(s string) string {
		r := []string{string(p.UID), "<uid>", p.Namespace, "<ns>", dt.tg.node, "<node>"}
		for _, ip := range []string{p.Status.PodIP, p.Status.HostIP} {
			if ip != "" {
				r = append(r, ip, "<ip>")
			}
		}
		return strings.NewReplacer(r...).Replace(s)
	}
	v["phase"] = string(p.Status.Phase) + " " + p.Status.Reason
	var conds []string
	for _, cd := range p.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s %s", cd.Type, cd.Status, cd.Reason))
	}
	sort.Strings(conds)
	v["conditions"] = strings.Join(conds, ", ")
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range list {
			last := stateString(s.LastTerminationState)
			v["container "+s.Name] = fmt.Sprintf("state %s; last %s; ready %v; started %v", stateString(s.State), last, s.Ready, started(s))
			v["restarts "+s.Name] = strconv.Itoa(int(s.RestartCount))
			if term := s.State.Terminated; term != nil && term.Message != "" {
				v["message "+s.Name] = norm(term.Message)
			}
			if w := s.State.Waiting; c.waiting && w != nil {
				v["waiting "+s.Name] = norm(w.Message)
			}
		}
	}
	evs, err := e.client.CoreV1().Events(dt.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.Name})
	if err == nil {
		seen := map[string]bool{}
		for _, ev := range evs.Items {
			if ev.Reason != "Scheduled" && ev.InvolvedObject.UID == p.UID {
				seen[ev.Type+" "+ev.Reason] = true
			}
		}
		var reasons []string
		for r := range seen {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		v["events"] = strings.Join(reasons, ", ")
	}
	if c.logs {
		for _, ctr := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			out, err := e.kubectl(ctx, t, "", "logs", "-n", dt.ns, p.Name, "-c", ctr.Name)
			if err != nil {
				out = "error: " + err.Error()
			}
			v["log "+ctr.Name] = norm(out)
		}
	}
	if len(c.exec) > 0 {
		out, err := e.kubectl(ctx, t, "", append([]string{"exec", "-n", dt.ns, p.Name, "-c", "main", "--"}, c.exec...)...)
		if err != nil {
			out += "error: " + err.Error()
		}
		v["exec"] = norm(out)
	}
	return v
}

// diffProblems lists every item a Satellite node shows otherwise than the kubelet's.
func diffProblems(c diffCase, targets []diffTarget, views []map[string]string) []string {
	var ref map[string]string
	for i, dt := range targets {
		if dt.tg.reference {
			ref = views[i]
		}
	}
	if ref == nil {
		return []string{"no view of the kubelet's node"}
	}
	var problems []string
	for i, dt := range targets {
		if dt.tg.reference {
			continue
		}
		items := map[string]bool{}
		for k := range ref {
			items[k] = true
		}
		for k := range views[i] {
			items[k] = true
		}
		var keys []string
		for k := range items {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := c.differs[k]; ok {
				continue
			}
			if _, ok := c.differs[dt.tg.name+"/"+k]; ok {
				continue
			}
			got, want := views[i][k], ref[k]
			if k == "events" {
				got, want = withoutEvents(got, c.differs), withoutEvents(want, c.differs)
				want = withoutKubeletTransients(got, want)
			}
			if strings.HasPrefix(k, "restarts ") {
				g, _ := strconv.Atoi(got)
				w, _ := strconv.Atoi(want)
				if g-w <= 1 && w-g <= 1 {
					continue
				}
			}
			if got != want {
				problems = append(problems, fmt.Sprintf("%s: %s on %s:\n  %q\non the kubelet's node:\n  %q", c.name, k, dt.tg.name, got, want))
			}
		}
	}
	return problems
}

// withoutEvents drops from a list of events those the case says differ by design.
func withoutEvents(list string, differs map[string]string) string {
	var keep []string
	for _, ev := range strings.Split(list, ", ") {
		if _, ok := differs["event "+ev]; !ok {
			keep = append(keep, ev)
		}
	}
	return strings.Join(keep, ", ")
}

// kubeletTransients are events the reference kubelet reports now and then on its own, by
// the event that starts each, with the events it brings along. Seen in CI on the kubelet's node
// only, on a different case each time:
//   - a FailedMount for a configMap or projected volume it mounts a moment later ("object ...
//     not registered" while its configMap manager registers the pod), with the same logs and
//     states after it;
//   - a FailedToRetrieveImagePullSecret while its secret manager has not yet seen the pod's
//     pull secret: it pulls without it, that pull fails (Failed, then BackOff), and the next
//     one, with the secret, succeeds.
//
// Each is left out of the kubelet's events when the other node's events do not have its first
// event (so the same event on a Satellite node still counts), and the case's output shows it.
var kubeletTransients = map[string][]string{
	"Warning FailedMount":                     nil,
	"Warning FailedToRetrieveImagePullSecret": {"Warning Failed", "Normal BackOff"},
}

// withoutKubeletTransients drops each of kubeletTransients from the kubelet's events (want)
// when the other node's events (got) do not have it.
func withoutKubeletTransients(got, want string) string {
	for first, along := range kubeletTransients {
		if strings.Contains(got, first) || !strings.Contains(want, first) {
			continue
		}
		drop := map[string]string{"event " + first: ""}
		for _, ev := range along {
			drop["event "+ev] = ""
		}
		want = withoutEvents(want, drop)
	}
	return want
}

// diffObjects creates what the cases' pods refer to in a namespace: a ConfigMap, a Secret,
// and pull secrets for the environment's registry.
func (e *env) diffObjects(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	core := e.client.CoreV1()
	if _, err := core.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "diff-config"},
		Data: map[string]string{"greeting": "hello", "count": "3", "file.txt": "line one\nline two\n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "diff-secret"},
		Data: map[string][]byte{"token": []byte("s3cr3t-value"), "user": []byte("admin")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	registry := e.get(t, "REGISTRY")
	auth := func(user, password string) string {
		return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	}
	user, password := e.get(t, "REGISTRY_USER"), e.get(t, "REGISTRY_PASSWORD")
	for name, s := range map[string]*corev1.Secret{
		"pull": {Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
			`{"auths":{"https://` + registry + `":{"auth":"` + auth(user, password) + `"}}}`)}},
		"pull-dockercfg": {Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{corev1.DockerConfigKey: []byte(
			`{"` + registry + `":{"username":"` + user + `","password":"` + password + `"}}`)}},
		"pull-wrong": {Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
			`{"auths":{"` + registry + `":{"auth":"` + auth(user, "not-the-password") + `"}}}`)}},
	} {
		s.Name = name
		if _, err := core.Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}
