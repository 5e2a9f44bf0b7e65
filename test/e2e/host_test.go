package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `satellite host doctor` against the environment's host, with the flags each Satellite runs
// with: every check passes (GPU checks warn: the host has none; cgroup v1 warns on machines
// that still run it).
func TestIntegrationHostDoctor(t *testing.T) {
	e := loadEnv(t)
	bin := buildSatellite(t)
	pids := map[string]string{"containerd2": e.get(t, "SATELLITE_PID"), "containerd1.6": e.get(t, "SATELLITE_COMPAT_PID")}
	for _, tg := range e.targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			args := append(e.sshFlags(t), "--containerd-socket", tg.socket, "--pod-log-dir", tg.logDir,
				"--cluster-ranges", "10.96.0.0/16,10.214.0.0/24") // the Service range and the environment's --cluster-cidrs
			if root := satelliteFlag(pids[tg.name], "--containerd-root"); root != "" {
				args = append(args, "--containerd-root", root)
			}
			out, code := runSatellite(t, bin, append([]string{"host", "doctor"}, args...)...)
			t.Logf("satellite host doctor:\n%s", out)
			if code != 0 || strings.Contains(out, "[FAIL]") || !strings.Contains(out, " 0 failed") {
				t.Errorf("exit status %d, want 0 and no failed check", code)
			}
			for _, want := range []string{"[ ok ] ssh", "[ ok ] containerd socket", "[ ok ] containerd CRI", "[ ok ] runtime ready",
				"[ ok ] CNI network", "[ ok ] sandbox image", "[ ok ] runc", "[ ok ] cluster tunnel", "[ ok ] cluster ranges", "[ ok ] clock skew"} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q line", want)
				}
			}
		})
	}
	// A range that holds the host's own network (10.213.0.0/24) is a warning with its fix.
	out, _ := runSatellite(t, bin, append([]string{"host", "doctor", "--cluster-ranges", "10.213.0.0/16"}, e.sshFlags(t)...)...)
	if !strings.Contains(out, "[warn] cluster ranges") || !strings.Contains(out, "10.213.0.0/16") || !strings.Contains(out, "narrow --cluster-cidrs") {
		t.Errorf("doctor with a range over the host's network:\n%s", out)
	}
}

// A containerd with its CRI plugin disabled, as some packages ship it: doctor fails the CRI
// check and says what to change; prepare --dry-run shows the diff and changes nothing;
// prepare backs the config up and fixes it, and a second run finds nothing to change; the
// restarted containerd passes the CRI check.
func TestIntegrationHostDoctorCRIDisabled(t *testing.T) {
	e := loadEnv(t)
	bin := buildSatellite(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.toml")
	socket := filepath.Join(dir, "containerd.sock")
	original := fmt.Sprintf(`version = 3
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.grpc.v1.cri"]
root = "%[1]s/root"
state = "%[1]s/state"
[grpc]
  address = "%[2]s"
[ttrpc]
  address = "%[2]s.ttrpc"
[debug]
  address = ""
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  Root = "%[1]s/runc"
[plugins.'io.containerd.cri.v1.runtime'.cni]
  conf_dir = "%[1]s/cni"
`, dir, socket)
	if err := os.WriteFile(config, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "cni"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctrd := startContainerd(t, e, config, socket)

	ssh := e.sshFlags(t)
	doctor := append([]string{"host", "doctor"}, append(ssh, "--containerd-socket", socket, "--containerd-root", dir+"/root", "--containerd-config", config)...)
	prepare := append([]string{"host", "prepare"}, append(ssh, "--containerd-config", config)...)

	out, code := runSatellite(t, bin, doctor...)
	t.Logf("satellite host doctor, CRI disabled:\n%s", out)
	if code == 0 {
		t.Error("doctor exited 0 against a containerd without CRI")
	}
	wantLines(t, out,
		"[FAIL] containerd CRI     CRI plugin disabled: containerd answers on "+socket+", but runtime.v1.RuntimeService is unimplemented",
		"       fix: "+config+` line 2: disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.grpc.v1.cri"]`,
		`            remove "io.containerd.grpc.v1.cri" from disabled_plugins, then restart containerd (sudo systemctl restart containerd);`,
		"            satellite host prepare --ssh "+e.get(t, "HOST_SSH")+" --containerd-config "+config+" --restart-containerd does both (add --dry-run to see the diff first)",
		"[skip] runtime ready      not checked: needs the containerd CRI",
	)

	out, code = runSatellite(t, bin, append(prepare, "--dry-run")...)
	t.Logf("satellite host prepare --dry-run:\n%s", out)
	if code != 0 {
		t.Fatalf("prepare --dry-run: exit status %d", code)
	}
	wantLines(t, out,
		`-disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.grpc.v1.cri"]`,
		`+disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp"]`,
		"+++ "+dir+"/cni/99-satellite-loopback.conflist",
		"dry run: nothing was changed",
	)
	if got := readFile(t, config); got != original {
		t.Errorf("--dry-run changed the config:\n%s", got)
	}
	if backups, _ := filepath.Glob(config + ".satellite-backup-*"); len(backups) != 0 || fileExists(dir+"/cni/99-satellite-loopback.conflist") {
		t.Errorf("--dry-run wrote files: backups %q", backups)
	}

	out, code = runSatellite(t, bin, prepare...)
	t.Logf("satellite host prepare:\n%s", out)
	if code != 0 {
		t.Fatalf("prepare: exit status %d", code)
	}
	backups, _ := filepath.Glob(config + ".satellite-backup-*")
	if len(backups) != 1 || readFile(t, backups[0]) != original {
		t.Fatalf("backups %q: want one, holding the original config", backups)
	}
	fixed := readFile(t, config)
	if strings.Contains(fixed, `"io.containerd.grpc.v1.cri"`) || !strings.Contains(fixed, `conf_dir = "`+dir+`/cni"`) {
		t.Errorf("prepared config:\n%s", fixed)
	}
	if !strings.Contains(readFile(t, dir+"/cni/99-satellite-loopback.conflist"), `"type":"loopback"`) {
		t.Error("no loopback CNI config written")
	}
	wantLines(t, out, "backed up "+config+" to "+backups[0], "wrote "+config,
		"containerd reads its config only at start: restart it (sudo systemctl restart containerd), or run this with --restart-containerd")

	out, code = runSatellite(t, bin, prepare...)
	if code != 0 || !strings.HasPrefix(out, "nothing to change: ") || readFile(t, config) != fixed {
		t.Errorf("second prepare: exit status %d:\n%s", code, out)
	}
	if again, _ := filepath.Glob(config + ".satellite-backup-*"); len(again) != 1 {
		t.Errorf("second prepare made another backup: %q", again)
	}

	ctrd.stop(t)
	startContainerd(t, e, config, socket)
	out, code = runSatellite(t, bin, doctor...)
	t.Logf("satellite host doctor, after prepare and a restart:\n%s", out)
	wantLines(t, out, "[ ok ] containerd CRI     containerd v2.2.1, CRI v1", "[ ok ] runtime ready      RuntimeReady",
		"[ ok ] CNI network        NetworkReady; "+dir+"/cni: satellite-loopback")
	if code != 0 {
		t.Errorf("doctor after prepare: exit status %d", code)
	}
}

// buildSatellite builds the satellite binary for the test.
func buildSatellite(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "satellite")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/satellite-vk/satellite/cmd/satellite")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (e *env) sshFlags(t *testing.T) []string {
	return []string{"--ssh", e.get(t, "HOST_SSH"), "--ssh-key", e.get(t, "HOST_SSH_KEY"), "--known-hosts", e.get(t, "HOST_KNOWN_HOSTS")}
}

// runSatellite runs the binary and returns its standard output and exit status; standard
// error is logged.
func runSatellite(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("satellite %s: stderr: %s", args[1], stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("satellite %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), cmd.ProcessState.ExitCode()
}

// satelliteFlag reads a flag's value from a running Satellite's command line ("" if the
// process or the flag is not there).
func satelliteFlag(pid, flag string) string {
	b, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		return ""
	}
	args := strings.Split(string(b), "\x00")
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

type throwawayContainerd struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startContainerd runs the environment's containerd 2.x binary in the host's network
// namespace with config, until the test ends or stop is called.
func startContainerd(t *testing.T, e *env, config, socket string) *throwawayContainerd {
	t.Helper()
	bin := filepath.Join(filepath.Dir(e.get(t, "CTR")), "containerd")
	log, err := os.OpenFile(filepath.Join(filepath.Dir(config), "containerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	c := &throwawayContainerd{cmd: exec.Command("nsenter", "--net=/run/netns/"+e.get(t, "HOST_NETNS"), bin, "--config", config), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.stop(t) })
	e.waitFor(t, 30*time.Second, "containerd at "+socket, func(ctx context.Context) (bool, error) {
		select {
		case <-c.done:
			t.Fatalf("containerd exited: see %s", filepath.Join(filepath.Dir(config), "containerd.log"))
		default:
		}
		return exec.CommandContext(ctx, e.get(t, "CTR"), "-a", socket, "version").Run() == nil, nil
	})
	return c
}

// stop ends containerd (SIGTERM, then SIGKILL after 10 s) and waits for it. It is idempotent.
func (c *throwawayContainerd) stop(t *testing.T) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Log("containerd ignored SIGTERM; killing it")
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("no line %q in:\n%s", l, out)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
