package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// The fault suite breaks what a remote host's link, sshd, containerd and Satellite itself go
// through in real life, and checks after each fault, with a ledger, that Kubernetes tells the
// truth and that nothing was lost or duplicated. These tests break the shared host, so none of
// them is parallel: Go runs them alone, before the parallel tests.

// faultHost controls the local environment's remote host and Satellite from a test.
type faultHost struct {
	e  *env
	tg target
	h  *host
}

func (e *env) faultHost(t *testing.T) *faultHost {
	t.Helper()
	tg := e.targets(t)[0] // the containerd 2.x node
	return &faultHost{e: e, tg: tg, h: e.host(t, tg)}
}

// link sets the host's network link up or down, as a cable pulled or a route lost.
func (f *faultHost) link(t *testing.T, state string) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net=/run/netns/"+f.e.get(t, "HOST_NETNS"), "ip", "link", "set", "sat-veth1", state).CombinedOutput()
	if err != nil {
		t.Fatalf("link %s: %v: %s", state, err, out)
	}
}

// hostPids lists the processes in the host's network namespace whose command line matches
// every one of words.
func (f *faultHost) hostPids(t *testing.T, words ...string) []int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", f.e.get(t, "HOST_NETNS")).Output()
	if err != nil {
		t.Fatalf("ip netns pids: %v", err)
	}
	var pids []int
	for _, s := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(s)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		all := true
		for _, w := range words {
			all = all && strings.Contains(cmd, w)
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}

func kill9(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	for _, pid := range pids {
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// devUp brings back whatever of the local environment is not running (hack/dev-up.sh is
// idempotent) and reloads the environment file, which names the new processes.
func (f *faultHost) devUp(t *testing.T) {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "hack/dev-up.sh")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/dev-up.sh: %v: %s", err, out)
	}
	fresh := loadEnv(t)
	f.e.vars = fresh.vars
}

// satellitePid is the environment's Satellite (containerd 2.x node).
func (f *faultHost) satellitePid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(f.e.get(t, "KUBECONFIG")), "pids", "satellite.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// podSnapshot is what the API says of a pod's containers.
type podSnapshot struct {
	uid        types.UID
	phase      corev1.PodPhase
	containers map[string]string // container name -> container ID
	restarts   int32
}

func (f *faultHost) snapshot(t *testing.T, ns string) map[string]podSnapshot {
	t.Helper()
	pods, err := f.e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := map[string]podSnapshot{}
	for _, p := range pods.Items {
		s := podSnapshot{uid: p.UID, phase: p.Status.Phase, containers: map[string]string{}}
		for _, c := range p.Status.ContainerStatuses {
			s.containers[c.Name] = c.ContainerID
			s.restarts += c.RestartCount
		}
		snap[p.Name] = s
	}
	return snap
}

// ledger is the account taken after a fault: every pod of the namespaces agrees with the
// host, and the host has nothing that no pod owns.
type ledger struct {
	pods, sandboxes, containers int
	problems                    []string
}

func (l *ledger) add(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// account compares the API's pods of namespaces with the host: one sandbox per pod, each
// reported container on the host in the reported state with the reported exit code, no
// sandbox, container, log or volume directory of these namespaces without its pod.
func (f *faultHost) account(ctx context.Context, namespaces ...string) (*ledger, error) {
	l := &ledger{}
	type hostPod struct {
		sandboxes  []*runtimeapi.PodSandbox
		containers map[string]*runtimeapi.Container
	}
	onHost := map[types.UID]*hostPod{}
	owned := func(labels map[string]string) (types.UID, bool) {
		for _, ns := range namespaces {
			if labels["io.kubernetes.pod.namespace"] == ns {
				return types.UID(labels["io.kubernetes.pod.uid"]), true
			}
		}
		return "", false
	}
	sbs, err := f.h.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, err
	}
	for _, s := range sbs.Items {
		if uid, ok := owned(s.Labels); ok {
			if onHost[uid] == nil {
				onHost[uid] = &hostPod{containers: map[string]*runtimeapi.Container{}}
			}
			onHost[uid].sandboxes = append(onHost[uid].sandboxes, s)
			l.sandboxes++
		}
	}
	cs, err := f.h.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, err
	}
	for _, c := range cs.Containers {
		if uid, ok := owned(c.Labels); ok {
			if onHost[uid] == nil {
				onHost[uid] = &hostPod{containers: map[string]*runtimeapi.Container{}}
			}
			onHost[uid].containers[c.Id] = c
			l.containers++
		}
	}
	api := map[types.UID]bool{}
	dirs := map[string]bool{}
	for _, ns := range namespaces {
		pods, err := f.e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue // on its way out: not yet accountable
			}
			l.pods++
			api[p.UID] = true
			dirs[p.Namespace+"_"+p.Name+"_"+string(p.UID)] = true
			hp := onHost[p.UID]
			if hp == nil {
				if p.Status.Phase == corev1.PodRunning {
					l.add("%s/%s is Running in the API but the host has nothing of it", p.Namespace, p.Name)
				}
				continue
			}
			if len(hp.sandboxes) > 1 {
				ready := 0
				for _, s := range hp.sandboxes {
					if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
						ready++
					}
				}
				if ready > 1 {
					l.add("%s/%s has %d ready sandboxes on the host: a duplicate", p.Namespace, p.Name, ready)
				}
			}
			for _, st := range p.Status.ContainerStatuses {
				if st.ContainerID == "" {
					continue
				}
				id := strings.TrimPrefix(st.ContainerID, "containerd://")
				c := hp.containers[id]
				if c == nil {
					l.add("%s/%s container %s: %s is not on the host", p.Namespace, p.Name, st.Name, id)
					continue
				}
				switch {
				case st.State.Running != nil && c.State != runtimeapi.ContainerState_CONTAINER_RUNNING:
					l.add("%s/%s container %s: Running in the API, %s on the host", p.Namespace, p.Name, st.Name, c.State)
				case st.State.Terminated != nil && c.State != runtimeapi.ContainerState_CONTAINER_EXITED:
					l.add("%s/%s container %s: Terminated in the API, %s on the host", p.Namespace, p.Name, st.Name, c.State)
				case st.State.Terminated != nil:
					cst, err := f.h.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
					if err != nil {
						return nil, err
					}
					if got := cst.GetStatus().GetExitCode(); got != st.State.Terminated.ExitCode {
						l.add("%s/%s container %s: exit code %d in the API, %d on the host", p.Namespace, p.Name, st.Name, st.State.Terminated.ExitCode, got)
					}
				}
			}
		}
	}
	for uid, hp := range onHost {
		if !api[uid] {
			l.add("pod %s is gone from the API but the host still has %d sandbox(es) and %d container(s)", uid, len(hp.sandboxes), len(hp.containers))
		}
	}
	// Satellite records each pod log directory it makes in <log root>/.satellite-<node>.
	records, err := f.h.Output(ctx, "ls -1 "+remote.Quote(f.tg.logDir)+"/.satellite-*/ 2>/dev/null || true")
	if err != nil {
		return nil, err
	}
	for _, d := range strings.Fields(string(records)) {
		for _, ns := range namespaces {
			if strings.HasPrefix(d, ns+"_") && !dirs[d] {
				l.add("the record of %s/%s is left on the host without its pod", f.tg.logDir, d)
			}
		}
	}
	for _, root := range []string{f.tg.logDir, f.tg.podDir} {
		out, err := f.h.Output(ctx, "ls -1 "+remote.Quote(root)+" 2>/dev/null || true")
		if err != nil {
			return nil, err
		}
		for _, d := range strings.Fields(string(out)) {
			for _, ns := range namespaces {
				if strings.HasPrefix(d, ns+"_") && !dirs[d] {
					l.add("%s/%s is left on the host without its pod", root, d)
				}
			}
		}
	}
	sort.Strings(l.problems)
	return l, nil
}

// settle waits until the ledger balances, and fails the test with its problems if it does not
// within timeout. It returns the time it took.
func (f *faultHost) settle(t *testing.T, timeout time.Duration, namespaces ...string) (time.Duration, *ledger) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last *ledger // the last ledger taken, if any
	var err error
	for {
		var l *ledger
		l, err = f.account(ctx, namespaces...)
		if err == nil && len(l.problems) == 0 {
			return time.Since(start), l
		}
		if err == nil {
			last = l
		}
		select {
		case <-ctx.Done():
			if last == nil {
				t.Fatalf("ledger: %v", err)
			}
			// One line each, so that every problem shows where only test lines are kept.
			for _, p := range last.problems {
				t.Errorf("ledger: %s", p)
			}
			t.Fatalf("ledger does not balance %v after the fault (last error: %v): %d problems, above", timeout, err, len(last.problems))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// unchanged fails the test for every pod whose containers were replaced or restarted between
// two snapshots.
func unchanged(t *testing.T, before, after map[string]podSnapshot, what string) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s: pod %s is gone", what, name)
		case a.uid != b.uid:
			t.Errorf("%s: pod %s was replaced", what, name)
		case a.restarts != b.restarts:
			t.Errorf("%s: pod %s restarted (%d -> %d restarts)", what, name, b.restarts, a.restarts)
		default:
			for c, id := range b.containers {
				if a.containers[c] != id {
					t.Errorf("%s: pod %s container %s changed from %s to %s", what, name, c, id, a.containers[c])
				}
			}
		}
	}
}

// idlePods creates n pods that run until deleted and waits for them to run.
func (f *faultHost) idlePods(t *testing.T, ns, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		f.e.createPod(t, ns, f.tg.pod(fmt.Sprintf("%s-%d", prefix, i), corev1.RestartPolicyAlways, "exec sleep 3600"))
	}
	for i := 0; i < n; i++ {
		f.e.waitPod(t, ns, fmt.Sprintf("%s-%d", prefix, i), 3*time.Minute, "running", running)
	}
}

// exitPod is a pod whose container exits with code after a delay, never restarted.
func (f *faultHost) exitPod(t *testing.T, ns, name string, after time.Duration, code int) {
	t.Helper()
	f.e.createPod(t, ns, f.tg.pod(name, corev1.RestartPolicyNever, fmt.Sprintf("sleep %d; exit %d", int(after.Seconds()), code)))
	f.e.waitPod(t, ns, name, time.Minute, "running", running)
}

func terminatedWith(code int32) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Terminated != nil && c.State.Terminated.ExitCode == code {
				return true
			}
		}
		return false
	}
}

// stats is Satellite's goroutines and SSH channels, for leak checks.
func (f *faultHost) baseline(t *testing.T) satelliteStats {
	t.Helper()
	var s satelliteStats
	f.e.waitFor(t, 30*time.Second, "Satellite's debug endpoint", func(ctx context.Context) (bool, error) {
		b, err := httpGet(ctx, "http://"+f.tg.debug+"/debug/satellite")
		if err != nil {
			return false, err
		}
		s = satelliteStats{}
		return true, json.Unmarshal(b, &s)
	})
	return s
}

// noLeaks waits for Satellite's goroutines and SSH channels to come back to (near) a baseline
// taken with no pods of the test.
func (f *faultHost) noLeaks(t *testing.T, base satelliteStats) {
	t.Helper()
	var now satelliteStats
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		now = f.baseline(t)
		// A few goroutines come and go with timers and informers; a leak per pod or per
		// stream is many more.
		if now.SSH.Channels <= base.SSH.Channels && now.Goroutines <= base.Goroutines+10 {
			t.Logf("leak check: %d goroutines (baseline %d), %d SSH channels (baseline %d), %d SSH dials", now.Goroutines, base.Goroutines, now.SSH.Channels, base.SSH.Channels, now.SSH.Dials)
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("Satellite leaks: %d goroutines (baseline %d), %d SSH channels (baseline %d)", now.Goroutines, base.Goroutines, now.SSH.Channels, base.SSH.Channels)
			return
		case <-time.After(time.Second):
		}
	}
}

// Link cuts of 10 s and 90 s: the node turns NotReady (the long cut) saying SSH, the
// containers keep running, pods keep their status, a container that exits during the cut is
// reported with its real exit code afterwards, a pod deleted during the cut is removed from the
// host when the link returns, and the ledger balances.
func TestIntegrationFaultLinkCut(t *testing.T) {
	e := loadEnv(t)
	f := e.faultHost(t)
	for _, cut := range []time.Duration{10 * time.Second, 90 * time.Second} {
		t.Run(cut.String(), func(t *testing.T) {
			ns := e.namespace(t)
			f.idlePods(t, ns, "idle", 4)
			f.exitPod(t, ns, "exits", cut/2, 7)
			doomed := e.createPod(t, ns, f.tg.pod("deleted-during-cut", corev1.RestartPolicyAlways, "exec sleep 3600"))
			e.waitPod(t, ns, doomed.Name, time.Minute, "running", running)
			before := f.snapshot(t, ns)
			delete(before, "exits")
			delete(before, doomed.Name)

			f.link(t, "down")
			restored := false
			t.Cleanup(func() {
				if !restored {
					f.link(t, "up")
				}
			})
			cutAt := time.Now()
			if err := e.client.CoreV1().Pods(ns).Delete(context.Background(), doomed.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if cut > 30*time.Second {
				reason := e.waitNodeReady(t, f.tg.node, corev1.ConditionFalse, 60*time.Second)
				t.Logf("node NotReady %.1fs after the link was cut: %s", time.Since(cutAt).Seconds(), reason)
				if !strings.Contains(reason, "SSH") {
					t.Errorf("NotReady reason %q does not name SSH", reason)
				}
			}
			time.Sleep(time.Until(cutAt.Add(cut)))
			during := f.snapshot(t, ns)
			unchanged(t, before, during, "during the cut")
			for name, s := range during {
				if name != "exits" && name != doomed.Name && s.phase != corev1.PodRunning {
					t.Errorf("during the cut: pod %s reported %s, want its last known Running", name, s.phase)
				}
			}

			f.link(t, "up")
			restored = true
			back := time.Now()
			e.waitNodeReady(t, f.tg.node, corev1.ConditionTrue, 60*time.Second)
			t.Logf("node Ready %.1fs after the link returned", time.Since(back).Seconds())
			e.waitPod(t, ns, "exits", time.Minute, "the exit during the cut reported with code 7", terminatedWith(7))
			e.waitFor(t, 90*time.Second, "the pod deleted during the cut to be gone", func(ctx context.Context) (bool, error) {
				_, err := e.client.CoreV1().Pods(ns).Get(ctx, doomed.Name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
			took, l := f.settle(t, 90*time.Second, ns)
			unchanged(t, before, f.snapshot(t, ns), "after the cut")
			t.Logf("ledger after a %v cut: %d pods, %d sandboxes, %d containers on the host, balanced %v after the link returned (%v after Ready)",
				cut, l.pods, l.sandboxes, l.containers, time.Since(back).Round(100*time.Millisecond), took.Round(100*time.Millisecond))
		})
	}
}

// sshd killed (with every session it serves, as a crash would) and started again: Satellite
// reconnects, nothing on the host is disturbed.
func TestIntegrationFaultSSHDKilled(t *testing.T) {
	e := loadEnv(t)
	f := e.faultHost(t)
	ns := e.namespace(t)
	f.idlePods(t, ns, "idle", 3)
	before := f.snapshot(t, ns)
	dials := f.baseline(t).SSH.Dials
	pids := f.hostPids(t, "sshd")
	if len(pids) == 0 {
		t.Fatal("no sshd in the host's namespace")
	}
	kill9(t, pids)
	t.Logf("killed %d sshd processes (listener and sessions)", len(pids))
	time.Sleep(5 * time.Second)
	f.devUp(t)
	e.waitNodeReady(t, f.tg.node, corev1.ConditionTrue, 60*time.Second)
	// The node may never have turned NotReady in a 5 s outage: what counts is that Satellite
	// reconnected and works.
	e.waitFor(t, 60*time.Second, "Satellite to reconnect", func(ctx context.Context) (bool, error) {
		return f.baseline(t).SSH.Dials > dials, nil
	})
	if out := e.mustKubectl(t, "", "exec", "-n", ns, "idle-0", "--", "echo", "back"); out != "back\n" {
		t.Errorf("exec after sshd restarted: %q", out)
	}
	f.settle(t, 60*time.Second, ns)
	unchanged(t, before, f.snapshot(t, ns), "after sshd was killed")
}

// containerd killed and started again: containers keep running under their shims, Satellite's
// CRI connection comes back, new pods start, nothing is restarted.
func TestIntegrationFaultContainerdKilled(t *testing.T) {
	e := loadEnv(t)
	f := e.faultHost(t)
	ns := e.namespace(t)
	f.idlePods(t, ns, "idle", 3)
	f.exitPod(t, ns, "exits", 10*time.Second, 3)
	before := f.snapshot(t, ns)
	delete(before, "exits")
	// An exec before the kill: Satellite keeps the streaming server's address of its last
	// session and connects to it while the next exec's CRI call is in flight. The restarted
	// containerd listens on another port, so the exec after it must not be sent to the old one.
	if got := e.mustKubectl(t, "", "exec", "-n", ns, "idle-0", "--", "echo", "before"); strings.TrimSpace(got) != "before" {
		t.Fatalf("exec before the kill printed %q", got)
	}
	ctrd := filepath.Join(filepath.Dir(f.e.get(t, "KUBECONFIG")), "host", "containerd.toml")
	pids := f.hostPids(t, "containerd", "-c", ctrd)
	if len(pids) != 1 {
		t.Fatalf("want one containerd with %s, found %v", ctrd, pids)
	}
	kill9(t, pids)
	down := time.Now()
	reason := e.waitNodeReady(t, f.tg.node, corev1.ConditionFalse, 60*time.Second)
	t.Logf("node NotReady %.1fs after containerd was killed: %s", time.Since(down).Seconds(), reason)
	time.Sleep(time.Until(down.Add(12 * time.Second))) // the exit happens while containerd is down
	f.devUp(t)
	back := time.Now()
	e.waitNodeReady(t, f.tg.node, corev1.ConditionTrue, 60*time.Second)
	t.Logf("node Ready %.1fs after containerd was started again", time.Since(back).Seconds())
	// containerd itself loses the exit code of a container that exits while it is down: its
	// CRI reports 255, reason Unknown, which is what a kubelet would read too. Satellite
	// reports what the runtime knows (the ledger checks that), without inventing a code.
	p := e.waitPod(t, ns, "exits", time.Minute, "the exit while containerd was down reported", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
	})
	if term := p.Status.ContainerStatuses[0].State.Terminated; term != nil {
		t.Logf("the container that exited (code 3) while containerd was down: %s, exit code %d (as the runtime reports it)", term.Reason, term.ExitCode)
	}
	e.createPod(t, ns, f.tg.pod("after", corev1.RestartPolicyAlways, "exec sleep 3600"))
	e.waitPod(t, ns, "after", time.Minute, "a new pod running", running)
	for _, pod := range []string{"idle-0", "after"} {
		if got := e.mustKubectl(t, "", "exec", "-n", ns, pod, "--", "echo", "after"); strings.TrimSpace(got) != "after" {
			t.Errorf("exec in %s after containerd came back printed %q", pod, got)
		}
	}
	f.settle(t, 60*time.Second, ns)
	unchanged(t, before, f.snapshot(t, ns), "after containerd was killed")
}

// A host reboot: containerd and every container die at once. Pods follow their restart policy
// (Always: a new sandbox and restarted containers; Never: Failed), and say what happened.
func TestIntegrationFaultHostReboot(t *testing.T) {
	e := loadEnv(t)
	f := e.faultHost(t)
	ns := e.namespace(t)
	f.idlePods(t, ns, "always", 2)
	e.createPod(t, ns, f.tg.pod("never", corev1.RestartPolicyNever, "exec sleep 3600"))
	e.waitPod(t, ns, "never", time.Minute, "running", running)
	before := f.snapshot(t, ns)

	sock := f.tg.socket
	ctrd := filepath.Join(filepath.Dir(f.e.get(t, "KUBECONFIG")), "host", "containerd.toml")
	kill9(t, f.hostPids(t, "containerd", "-c", ctrd))
	// Every shim of this containerd and everything under it, as the power going out would.
	shims := f.hostPids(t, "containerd-shim", sock)
	var all []int
	for _, s := range shims {
		all = append(all, descendants(s)...)
	}
	kill9(t, append(all, shims...))
	t.Logf("rebooted: killed containerd, %d shims and %d processes under them", len(shims), len(all))
	f.devUp(t)

	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("always-%d", i)
		p := e.waitPod(t, ns, name, 2*time.Minute, "restarted after the reboot", func(p *corev1.Pod) bool {
			return running(p) && p.Status.ContainerStatuses[0].RestartCount > 0
		})
		c := p.Status.ContainerStatuses[0]
		if c.ContainerID == before[name].containers["main"] {
			t.Errorf("%s: still reports the container that died in the reboot", name)
		}
		if c.LastTerminationState.Terminated == nil {
			t.Errorf("%s: no last state for the container that died in the reboot: %+v", name, c)
		} else {
			t.Logf("%s after the reboot: restartCount %d, last state %s (exit %d)", name, c.RestartCount, c.LastTerminationState.Terminated.Reason, c.LastTerminationState.Terminated.ExitCode)
		}
	}
	p := e.waitPod(t, ns, "never", 2*time.Minute, "Failed after the reboot", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if c := p.Status.ContainerStatuses[0]; c.State.Terminated == nil || c.State.Terminated.ExitCode == 0 {
		t.Errorf("never: the container that died in the reboot is not reported terminated with an error: %+v", c.State)
	} else {
		t.Logf("never after the reboot: %s, exit %d", c.State.Terminated.Reason, c.State.Terminated.ExitCode)
	}
	f.settle(t, 60*time.Second, ns)
}

// descendants lists pid's children, grandchildren and so on.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// Satellite killed with SIGKILL while 50 pods run, then started again: it adopts every
// container (none restarted, no duplicate sandbox), reports an exit that happened while it was
// away with its real exit code, carries out a deletion requested meanwhile, and every pod's
// status is right within seconds of its start.
func TestIntegrationFaultSatelliteKilled(t *testing.T) {
	e := loadEnv(t)
	f := e.faultHost(t)
	ns := e.namespace(t)
	f.idlePods(t, ns, "idle", 48)
	f.exitPod(t, ns, "exits", 10*time.Second, 42)
	doomed := e.createPod(t, ns, f.tg.pod("deleted-while-away", corev1.RestartPolicyAlways, "exec sleep 3600"))
	e.waitPod(t, ns, doomed.Name, time.Minute, "running", running)
	f.settle(t, time.Minute, ns)
	before := f.snapshot(t, ns)
	delete(before, "exits")
	delete(before, doomed.Name)

	pid := f.satellitePid(t)
	kill9(t, []int{pid})
	killed := time.Now()
	t.Logf("Satellite (pid %d) killed with SIGKILL with %d pods running", pid, len(before)+2)
	if err := e.client.CoreV1().Pods(ns).Delete(context.Background(), doomed.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(killed.Add(12 * time.Second))) // "exits" exits while Satellite is away
	started := time.Now()                                // an upper bound: dev-up also checks the rest and builds Satellite
	f.devUp(t)
	e.waitPod(t, ns, "exits", time.Minute, "the exit while Satellite was away reported with code 42", terminatedWith(42))
	e.waitFor(t, time.Minute, "the pod deleted while Satellite was away to be gone", func(ctx context.Context) (bool, error) {
		_, err := e.client.CoreV1().Pods(ns).Get(ctx, doomed.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	_, l := f.settle(t, time.Minute, ns)
	correct := time.Since(started)
	after := f.snapshot(t, ns)
	unchanged(t, before, after, "after Satellite was killed")
	restarted := 0
	for name, b := range before {
		if after[name].restarts != b.restarts || after[name].containers["main"] != b.containers["main"] {
			restarted++
		}
	}
	t.Logf("restart with %d running pods: %d containers restarted, %d sandboxes for %d pods on the host, every pod status correct %.1fs after Satellite was started (hack/dev-up.sh and the ledger's polling included)",
		len(before), restarted, l.sandboxes, l.pods, correct.Seconds())
}

// A churn soak: 200 pods created and deleted, 8 at a time, while faults (link flaps, Satellite
// restarts, containerd kills) hit at random moments. At the end nothing is left on the host,
// and Satellite has no more goroutines or SSH channels than before.
func TestIntegrationFaultChurnSoak(t *testing.T) {
	e := loadEnv(t)
	f := e.faultHost(t)
	ns := e.namespace(t)
	base := f.baseline(t)
	const cycles, parallel = 200, 8
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	var mu sync.Mutex
	failures := map[string]int{}
	fail := func(what string) { mu.Lock(); failures[what]++; mu.Unlock() }
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := fmt.Sprintf("churn-%d", i)
				pod := f.tg.pod(name, corev1.RestartPolicyAlways, "exec sleep 3600")
				if _, err := e.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					fail("create: " + err.Error())
					continue
				}
				// Delete at a random point of the pod's start: before, during or after.
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Millisecond)
				if err := e.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
					fail("delete: " + err.Error())
				}
			}
		}()
	}
	// The faults are injected from the test goroutine between batches (t.Fatal must not run in
	// other goroutines).
	injected := map[string]int{}
	for i := 0; i < cycles; i++ {
		if i > 0 && i%25 == 0 {
			switch k := []string{"link", "satellite", "containerd"}[(i/25)%3]; k {
			case "link":
				f.link(t, "down")
				time.Sleep(time.Duration(2+rand.IntN(4)) * time.Second)
				f.link(t, "up")
				injected[k]++
			case "satellite":
				kill9(t, []int{f.satellitePid(t)})
				f.devUp(t)
				injected[k]++
			case "containerd":
				ctrd := filepath.Join(filepath.Dir(f.e.get(t, "KUBECONFIG")), "host", "containerd.toml")
				kill9(t, f.hostPids(t, "containerd", "-c", ctrd))
				f.devUp(t)
				injected[k]++
			}
		}
		next <- i
	}
	close(next)
	wg.Wait()
	cancel()
	for what, n := range failures {
		t.Errorf("%d API calls failed: %s", n, what)
	}
	e.waitFor(t, 5*time.Minute, "every churned pod to be gone from the API", func(ctx context.Context) (bool, error) {
		pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0, err
	})
	// Pods that Satellite never saw (deleted while it was down) may have left nothing, or a
	// sandbox that the orphan collector removes after its grace period (a minute).
	_, l := f.settle(t, 3*time.Minute, ns)
	t.Logf("churn soak: %d pods created and deleted, faults injected %v; host left with %d sandboxes and %d containers of the namespace", cycles, injected, l.sandboxes, l.containers)
	f.noLeaks(t, base)
}
