package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/satellite-vk/satellite/remote"
)

// subPath mounts, against the reference kubelet (issue 17): a symlink that a container plants
// in a volume never takes another container's subPath out of that volume. A refused subPath
// leaves its container waiting in CreateContainerConfigError with the kubelet's message while
// the pod's other containers run; a symlink that stays inside the volume is followed, as by
// the kubelet.
func TestIntegrationSubPath(t *testing.T) {
	e := loadEnv(t)
	runDiffSuite(t, e, "subPath suite", subPathCases(e, t))
}

// downwardEnv is the pod's name, namespace and UID in the environment.
func downwardEnv() []corev1.EnvVar {
	var env []corev1.EnvVar
	for name, field := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid"} {
		env = append(env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: field}}})
	}
	return env
}

// volumeOnHost is a shell expression for the host path of the pod's emptyDir d, on either
// kind of node: the kubelet's layout, or Satellite's.
func volumeOnHost(fx diffFixture) string {
	if fx.tg.reference {
		return fx.e.vars["REFERENCE_ROOT_DIR"] + `/pods/$POD_UID/volumes/kubernetes.io~empty-dir/d`
	}
	return fx.tg.podDir + `/${POD_NAMESPACE}_${POD_NAME}_$POD_UID/volumes/d`
}

// subPathPod gives the pod an emptyDir d, an init container "plant" that runs plant with d at
// /d, mounts vm (of volume d unless vm names another) in the main container at /sub, and adds
// a container "side" with the whole of d at /d, running side.
func subPathPod(plant string, vm corev1.VolumeMount, side string) func(*corev1.Pod, diffFixture) {
	return func(p *corev1.Pod, fx diffFixture) {
		p.Spec.Volumes = append(p.Spec.Volumes, emptyDir("d"))
		in := busybox("plant", strings.ReplaceAll(plant, "$VOLUME", volumeOnHost(fx)))
		in.Env, in.VolumeMounts = downwardEnv(), []corev1.VolumeMount{mount("d", "/d")}
		p.Spec.InitContainers = append(p.Spec.InitContainers, in)
		if vm.Name == "" {
			vm.Name = "d"
		}
		vm.MountPath = "/sub"
		main := &p.Spec.Containers[0]
		main.Env, main.VolumeMounts = downwardEnv(), append(main.VolumeMounts, vm)
		if side != "" {
			c := busybox("side", side)
			c.VolumeMounts = []corev1.VolumeMount{mount("d", "/d")}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
	}
}

// subPathRefused: main waits in CreateContainerConfigError while side runs.
func subPathRefused(p *corev1.Pod) bool {
	s, side := ctrStatus(p, "main"), ctrStatus(p, "side")
	return s.State.Waiting != nil && s.State.Waiting.Reason == "CreateContainerConfigError" && side.State.Running != nil
}

// mainEnded: the main container has terminated.
func mainEnded(p *corev1.Pod) bool { return ctrStatus(p, "main").State.Terminated != nil }

// backOffAfterRefusal is why a container refused on its restart may show another state.
const backOffAfterRefusal = "every node showed the kubelet's refusal after the restart (the case's until); then the refused try advances the crash-loop back-off, under the kubelet as here, and which of CreateContainerConfigError and CrashLoopBackOff a node shows depends on when it last synced the pod"

func subPathCases(e *env, t *testing.T) []diffCase {
	const sleep = "exec sleep 3600"
	sub := func(s string) corev1.VolumeMount { return corev1.VolumeMount{SubPath: s} }
	expr := func(s string) corev1.VolumeMount { return corev1.VolumeMount{SubPathExpr: s} }
	// A read-only volume of each kind but emptyDir, whose items a subPath names.
	withVolume := func(v corev1.Volume, vm corev1.VolumeMount) func(*corev1.Pod, diffFixture) {
		return func(p *corev1.Pod, fx diffFixture) {
			vm.Name = v.Name
			subPathPod("true", vm, "")(p, fx)
			p.Spec.Volumes = append(p.Spec.Volumes, v)
		}
	}
	items := []corev1.KeyToPath{{Key: "greeting", Path: "dir/greeting"}}
	configMap := corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "diff-config"}, Items: items}}}
	secret := corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "diff-secret"}}}
	downward := corev1.Volume{Name: "dw", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}}
	projected := corev1.Volume{Name: "pr", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "diff-config"}, Items: items}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "diff-secret"}}}}}}}
	// A hostPath directory with a way out and a way in, the same for every node.
	hostDir := filepath.Join(t.TempDir(), "hostpath")
	if err := os.MkdirAll(filepath.Join(hostDir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "real", "f"), []byte("host inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, to := range map[string]string{"out": "/", "in": "real"} {
		if err := os.Symlink(to, filepath.Join(hostDir, link)); err != nil {
			t.Fatal(err)
		}
	}
	hostPath := corev1.Volume{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}

	refusedCase := func(name, plant string, vm corev1.VolumeMount) diffCase {
		return diffCase{name: name, script: "ls /sub/run /sub/etc; echo escaped", edit: subPathPod(plant, vm, sleep),
			until: subPathRefused, events: []string{"Failed"}, waiting: true}
	}
	cases := []diffCase{
		// The way out of CVE-2017-1002101 and its variants: refused.
		refusedCase("subpath-symlink-to-root", "ln -s / /d/x", sub("x")),
		refusedCase("subpath-symlink-to-parent", "ln -s .. /d/x", sub("x")),
		refusedCase("subpath-symlink-to-host-dir", "ln -s /etc /d/x", sub("x")),
		refusedCase("subpath-symlink-in-middle", "ln -s /etc /d/a", sub("a/passwd")),
		refusedCase("subpath-symlink-in-middle-missing", "ln -s /etc /d/a", sub("a/satellite-none")),
		refusedCase("subpathexpr-symlink-to-root", `ln -s / "/d/$POD_NAME"`, expr("$(POD_NAME)")),
		refusedCase("subpathexpr-missing-value", "true", expr("$(POD_NAME)/$(NOT_SET)")),
		// A symlink that stays in the volume is followed.
		{name: "subpath-symlink-inside-absolute", script: "cat /sub/f", logs: true, until: mainEnded,
			edit: subPathPod(`mkdir /d/real && echo inside > /d/real/f && ln -s "$VOLUME/real" /d/x`, sub("x"), sleep)},
		{name: "subpath-symlink-inside-relative", script: "cat /sub/f", logs: true, until: mainEnded,
			edit: subPathPod("mkdir /d/real && echo inside > /d/real/f && ln -s real /d/x", sub("x"), sleep)},
		{name: "subpath-made-when-missing", script: "stat -c '%a %F' /sub; echo hi > /sub/f", logs: true, until: mainEnded,
			edit: subPathPod("true", sub("new/dir"), "while [ ! -f /d/new/dir/f ]; do sleep 0.2; done; cat /d/new/dir/f; "+sleep)},
		{name: "subpathexpr-per-pod", script: "echo from-$POD_NAME > /sub/f", logs: true, until: mainEnded,
			edit: subPathPod("true", expr("logs/$(POD_NAME)"), "while [ ! -f /d/logs/subpathexpr-per-pod/f ]; do sleep 0.2; done; cat /d/logs/*/f; "+sleep)},
		// A container restarted after its subPath became a symlink is refused on the restart:
		// every node must show the kubelet's refusal after the first run. What it shows a
		// moment later depends on when each syncs: a refused restart counts as a try of the
		// crash-loop back-off, under the kubelet as here, so the container alternates between
		// CreateContainerConfigError and CrashLoopBackOff with growing periods.
		{name: "subpath-swapped-before-restart", policy: corev1.RestartPolicyAlways, script: "touch /sub/ran; sleep 3; exit 1",
			edit: subPathPod("mkdir /d/x", sub("x"), "while [ ! -f /d/x/ran ]; do sleep 0.1; done; rm -rf /d/x; ln -s / /d/x; "+sleep),
			until: func(p *corev1.Pod) bool {
				s := ctrStatus(p, "main")
				return subPathRefused(p) && s.LastTerminationState.Terminated != nil &&
					s.State.Waiting.Message == `failed to prepare subPath for volumeMount "d" of container "main"`
			}, timeout: 120 * time.Second, differs: map[string]string{
				"container main": backOffAfterRefusal, "waiting main": backOffAfterRefusal, "event Warning BackOff": backOffAfterRefusal}},
		// Items of the other volume kinds, through their atomic writer's symlinks, and a
		// missing one, made as a directory as the kubelet makes it.
		{name: "subpath-configmap-item", script: "cat /sub", logs: true, until: mainEnded, edit: withVolume(configMap, sub("dir/greeting"))},
		{name: "subpath-configmap-missing-item", script: "ls -a /sub | wc -l", logs: true, until: mainEnded, edit: withVolume(configMap, sub("absent")),
			differs: map[string]string{"event Warning FailedMount": "the kubelet now and then reports a FailedMount for a configMap volume it mounts a moment later (seen once in CI on this case, with the same logs and states); Satellite writes the volume before the first container"}},
		{name: "subpath-secret-item", script: "cat /sub", logs: true, until: mainEnded, edit: withVolume(secret, sub("user"))},
		{name: "subpath-downward-item", script: "cat /sub", logs: true, until: mainEnded, edit: withVolume(downward, sub("name"))},
		{name: "subpath-projected-item", script: "cat /sub", logs: true, until: mainEnded, edit: withVolume(projected, sub("token"))},
		{name: "subpath-hostpath-inside", script: "cat /sub/f", logs: true, until: mainEnded, edit: withVolume(hostPath, sub("in"))},
		{name: "subpath-hostpath-symlink-out", script: "ls /sub/etc", until: func(p *corev1.Pod) bool {
			s := ctrStatus(p, "main")
			return s.State.Waiting != nil && s.State.Waiting.Reason == "CreateContainerConfigError"
		}, edit: withVolume(hostPath, sub("out")), events: []string{"Failed"}, waiting: true},
	}
	return cases
}

// TestIntegrationSubPathSwapLoop: another container swaps the subPath between a directory and
// a symlink to "/" in a loop while the main container restarts: no run of it ever sees the
// host's files. The kubelet's crash-loop back-off (10 s doubling to 5 min) allows a few
// restarts in the test's time; TestIntegrationSubPathHelperRace drives the same helper a
// hundred times on the host under a tighter race, which refuses about half the binds.
func TestIntegrationSubPathSwapLoop(t *testing.T) {
	e := loadEnv(t)
	for _, tg := range e.targets(t) { // the Satellite nodes
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			ns := e.namespace(t)
			pod := tg.pod("swap", corev1.RestartPolicyAlways, `if [ -e /sub/etc/passwd ] || [ -e /sub/run ]; then echo ESCAPED; else echo inside; fi; exit 1`)
			// The symlink stands for a moment in each round and the directory for 10 ms: the
			// race is run at every restart, yet most tries find the directory, so the container
			// does restart (every refused try also advances the back-off).
			swap := "while true; do rm -rf /d/x; ln -s / /d/x; rm -f /d/x; mkdir /d/x; sleep 0.01; done"
			subPathPod("mkdir /d/x", corev1.VolumeMount{SubPath: "x"}, swap)(pod, diffFixture{tg: tg, e: e})
			pod = e.createPod(t, ns, pod)
			deadline := time.Now().Add(240 * time.Second)
			runs, refusals := 0, 0
			for time.Now().Before(deadline) {
				p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				s := ctrStatus(p, "main")
				if s.State.Waiting != nil && s.State.Waiting.Reason == "CreateContainerConfigError" {
					refusals++
				}
				runs = int(s.RestartCount)
				if runs >= 2 {
					break
				}
				time.Sleep(time.Second)
			}
			for _, prev := range []bool{false, true} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				args := []string{"-n", ns, "logs", pod.Name, "-c", "main"}
				if prev {
					args = append(args, "--previous")
				}
				out, _ := e.kubectl(ctx, t, "", args...)
				cancel()
				if strings.Contains(out, "ESCAPED") {
					t.Errorf("a run of the main container saw the host's files: %q", out)
				}
			}
			t.Logf("%s: main restarted %d times under the swapping symlink (%d looks saw a refusal); no run saw the host's files", tg.name, runs, refusals)
			if runs < 2 {
				t.Errorf("main restarted %d times in 240 s, want at least 2", runs)
			}
			e.deletePod(t, ns, pod.Name)
			e.assertClean(t, e.host(t, tg), ns, pod.Name, pod.UID)
		})
	}
}

// TestIntegrationSubPathHelperRace runs the subPath helper that Satellite installed on the
// host, over SSH as Satellite runs it, 100 times while a process on the host swaps the subPath
// between a directory and a symlink to "/": every bind shows the directory or is refused.
func TestIntegrationSubPathHelperRace(t *testing.T) {
	e := loadEnv(t)
	for _, tg := range e.targets(t) { // the Satellite nodes
		t.Run(tg.name, func(t *testing.T) {
			h := e.host(t, tg)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			pattern := filepath.Join(filepath.Dir(tg.podDir), "bin", "satellite-subpath-*")
			helpers, err := h.Glob(ctx, pattern)
			if err == nil && len(helpers) == 0 {
				// Not installed yet: Satellite installs it for the first subPath it mounts.
				ns := e.namespace(t)
				pod := tg.pod("install", corev1.RestartPolicyNever, "true")
				subPathPod("mkdir /d/x", corev1.VolumeMount{SubPath: "x"}, "")(pod, diffFixture{tg: tg, e: e})
				pod = e.createPod(t, ns, pod)
				e.waitPod(t, ns, pod.Name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
				e.deletePod(t, ns, pod.Name)
				helpers, err = h.Glob(ctx, pattern)
			}
			if err != nil || len(helpers) == 0 {
				t.Fatalf("no subPath helper installed on the host as %s after a subPath pod ran: %v", pattern, err)
			}
			dir := filepath.Join(tg.podDir, "race-"+strconv.FormatInt(time.Now().UnixNano(), 36))
			q := remote.Quote
			script := `set -u; d=` + q(dir) + `; helper=` + q(helpers[0]) + `
mkdir -p "$d/vol" "$d/targets"; chmod 0700 "$d"; : > "$d/secret-outside"
( end=$(( $(date +%s) + 60 )); while [ "$(date +%s)" -lt "$end" ] && [ ! -e "$d/stop" ]; do
    mkdir "$d/vol/x.d" 2>/dev/null; touch "$d/vol/x.d/inside"; mv -T "$d/vol/x.d" "$d/vol/x" 2>/dev/null || rm -rf "$d/vol/x.d"
    ln -s "$d" "$d/vol/x.l" 2>/dev/null; rm -rf "$d/vol/x"; mv -T "$d/vol/x.l" "$d/vol/x" 2>/dev/null || rm -f "$d/vol/x.l"
  done ) &
mounted=0 refused=0 escaped=0
for i in $(seq 100); do
  t="$d/targets/$i"
  if "$helper" bind "$d/vol" x "$t" 2>/dev/null; then
    mounted=$((mounted+1))
    if [ -e "$t/secret-outside" ]; then escaped=$((escaped+1)); fi
    umount "$t"
  else
    refused=$((refused+1))
  fi
done
touch "$d/stop"; wait
echo "mounted=$mounted refused=$refused escaped=$escaped"
grep -c " $d/" /proc/self/mounts || true
rm -rf --one-file-system "$d"`
			out, err := h.Output(ctx, script)
			if err != nil {
				t.Fatalf("the race on the host: %v", err)
			}
			lines := strings.Fields(string(out))
			t.Logf("%s: 100 binds by %s under a swapping symlink: %s", tg.name, filepath.Base(helpers[0]), strings.Join(lines, " "))
			if len(lines) != 4 || lines[2] != "escaped=0" || lines[0] == "mounted=0" || lines[1] == "refused=0" || lines[3] != "0" {
				t.Errorf("want some mounted, some refused, none escaped and no mount left; got %q", out)
			}
		})
	}
}
