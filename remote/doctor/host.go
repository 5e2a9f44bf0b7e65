package doctor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/satellite-vk/satellite/remote"
)

func pass(r Result, detail string) Result { r.Status, r.Detail = OK, detail; return r }

func warn(r Result, detail, fix string) Result {
	r.Status, r.Detail, r.Fix = Warn, detail, fix
	return r
}

func fail(r Result, detail, fix string) Result {
	r.Status, r.Detail, r.Fix = Fail, detail, fix
	return r
}

func checkSSH(ctx context.Context, h Commander, o Options) Result {
	r := Result{Name: nameSSH}
	out, err := h.Output(ctx, "id -un; id -u")
	var hk *remote.HostKeyError
	switch {
	case errors.As(err, &hk):
		hostname, port := splitTarget(o.SSHTarget)
		return fail(r, err.Error(), fmt.Sprintf("check the host's key out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub),\n"+
			"then put it in %s: ssh-keyscan -p %s -t ed25519 %s >> %s\n(Satellite never connects without verifying the host key)",
			o.KnownHosts, port, hostname, o.KnownHosts))
	case err != nil:
		return fail(r, err.Error(), fmt.Sprintf("check that sshd listens on %s and that --ssh-key's public key is in the user's ~/.ssh/authorized_keys:\n"+
			"  ssh -i KEY -o UserKnownHostsFile=%s %s true", o.SSHTarget, o.KnownHosts, o.SSHTarget))
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return fail(r, fmt.Sprintf("unexpected answer to id: %q", out), "")
	}
	return pass(r, fmt.Sprintf("%s as %s (uid %s), host key verified", o.SSHTarget, f[0], f[1]))
}

// splitTarget splits user@host:port into host and port, for commands in fixes.
func splitTarget(t string) (host, port string) {
	_, hp, _ := strings.Cut(t, "@")
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return hp, "22"
	}
	return strings.Trim(hp[:i], "[]"), hp[i+1:]
}

// sbinPath adds the directories runc and friends live in to a non-root login's PATH.
const sbinPath = `PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; `

// checkRunc looks for the OCI runtime binary of containerd's default runtime.
func checkRunc(ctx context.Context, h Commander, cfg *criConfig) Result {
	r := Result{Name: nameRunc}
	bin := "runc"
	if cfg != nil {
		bin = cfg.binary(cfg.Containerd.DefaultRuntimeName)
	}
	out, err := h.Output(ctx, sbinPath+`b=$(command -v `+remote.Quote(bin)+`) || exit 3; echo "$b"; "$b" --version`)
	var exit *remote.ExitError
	if errors.As(err, &exit) && exit.Code == 3 {
		return fail(r, bin+" not found on the host: containerd starts every container with it",
			"install it: sudo apt-get install -y runc (Debian, Ubuntu) or sudo dnf install -y runc (Fedora, RHEL),\n"+
				"or the static binary from https://github.com/opencontainers/runc/releases as /usr/local/sbin/runc")
	}
	if err != nil {
		return fail(r, fmt.Sprintf("%s --version: %v", bin, err), "reinstall runc")
	}
	where, version := parseRunc(string(out))
	return pass(r, fmt.Sprintf("%s (%s)", version, where))
}

// parseRunc reads the binary's path and the first line of `runc --version` ("runc version
// 1.1.5+ds1").
func parseRunc(out string) (where, version string) {
	lines := strings.SplitN(strings.TrimSpace(out), "\n", 3)
	lines = append(lines, "", "")
	return strings.TrimSpace(lines[0]), strings.TrimSpace(strings.Replace(lines[1], " version ", " ", 1))
}

// checkCgroup reports the cgroup hierarchy: v1 still works for Satellite, which sets no
// resources yet, but containerd 2.2 and Kubernetes 1.35 deprecate it.
func checkCgroup(ctx context.Context, h Commander) Result {
	r := Result{Name: nameCgroup}
	out, err := h.Output(ctx, "stat -fc %T /sys/fs/cgroup")
	if err != nil {
		return warn(r, "cannot tell the cgroup version: "+err.Error(), "")
	}
	switch fs := strings.TrimSpace(string(out)); fs {
	case "cgroup2fs":
		return pass(r, "v2 (unified hierarchy)")
	case "tmpfs":
		return warn(r, "v1: works with Satellite, but deprecated by containerd 2.2 and Kubernetes 1.35",
			"boot the host with cgroup v2: add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub,\n"+
				"then sudo update-grub (or grub2-mkconfig -o /boot/grub2/grub.cfg) and reboot")
	default:
		return warn(r, "unknown cgroup filesystem "+fs, "")
	}
}

// dfProbe runs df on path, or on its nearest existing parent when it does not exist yet.
func dfProbe(p string) string {
	return `p=` + remote.Quote(p) + `; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -Pk -- "$p"`
}

type dfRow struct {
	mount         string
	usedK, availK uint64
}

// dfCapacity is df's Capacity column: a percentage, or "-" for a filesystem of no size.
var dfCapacity = regexp.MustCompile(`^([0-9]+%|-)$`)

// parseDF reads `df -Pk` output (POSIX format: one line per filesystem, never wrapped). The
// size and Capacity columns must be where POSIX puts them: a filesystem name with a space
// would shift the columns, and Used would be read from the size.
func parseDF(out string) (dfRow, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return dfRow{}, fmt.Errorf("df: unexpected output %q", out)
	}
	line := lines[len(lines)-1]
	f := strings.Fields(line)
	if len(f) < 6 || !dfCapacity.MatchString(f[4]) {
		return dfRow{}, fmt.Errorf("df: unexpected line %q", line)
	}
	_, err0 := strconv.ParseUint(f[1], 10, 64)
	used, err1 := strconv.ParseUint(f[2], 10, 64)
	avail, err2 := strconv.ParseUint(f[3], 10, 64)
	if err := errors.Join(err0, err1, err2); err != nil {
		return dfRow{}, fmt.Errorf("df: %w", err)
	}
	if used > math.MaxUint64-avail {
		return dfRow{}, fmt.Errorf("df: unexpected sizes in %q", line)
	}
	return dfRow{mount: strings.Join(f[5:], " "), usedK: used, availK: avail}, nil
}

// freePercent is the share of the filesystem still usable by containers, as df's Capacity
// column counts it (reserved blocks excluded).
func (d dfRow) freePercent() float64 {
	if d.usedK+d.availK == 0 {
		return 0
	}
	return 100 * float64(d.availK) / float64(d.usedK+d.availK)
}

// diskStatus: below 10% free (the kubelet's default nodefs.available eviction threshold)
// warns, below 2% fails.
func diskStatus(freePercent float64) Status {
	switch {
	case freePercent < 2:
		return Fail
	case freePercent < 10:
		return Warn
	}
	return OK
}

func checkDisk(ctx context.Context, h Commander, name, dir, flag string) Result {
	r := Result{Name: name}
	out, err := h.Output(ctx, dfProbe(dir))
	if err != nil {
		return warn(r, fmt.Sprintf("df %s: %v", dir, err), "")
	}
	d, err := parseDF(string(out))
	if err != nil {
		return warn(r, err.Error(), "")
	}
	detail := fmt.Sprintf("%s: %s free of %s (%.0f%%) on %s", dir, gib(d.availK), gib(d.usedK+d.availK), d.freePercent(), d.mount)
	fix := fmt.Sprintf("free space on %s: unused images (sudo ctr -n k8s.io images rm ...), old pod logs, or grow the filesystem;\nor move %s (and %s) to a larger one", d.mount, dir, flag)
	switch diskStatus(d.freePercent()) {
	case Fail:
		return fail(r, detail, fix)
	case Warn:
		return warn(r, detail, fix)
	}
	return pass(r, detail)
}

func gib(k uint64) string { return fmt.Sprintf("%.1f GiB", float64(k)/(1<<20)) }

// checkContainerdRootDisk checks the filesystem of containerd's root, which Satellite reports
// as the node's ephemeral storage, and that --containerd-root names the root containerd uses.
func checkContainerdRootDisk(ctx context.Context, h Commander, root string, cfg *criConfig) Result {
	actual := root
	if cfg != nil && cfg.ContainerdRootDir != "" {
		actual = cfg.ContainerdRootDir
	}
	r := checkDisk(ctx, h, nameDiskRoot, actual, "--containerd-root")
	if path.Clean(actual) == path.Clean(root) {
		return r
	}
	r.Detail += fmt.Sprintf("; but --containerd-root is %s: the node would report that disk", root)
	if r.Status == OK {
		r.Status = Warn
	}
	r.Fix = strings.TrimPrefix(r.Fix+"\n", "\n") + fmt.Sprintf("run Satellite with --containerd-root %s (SATELLITE_CONTAINERD_ROOT)", actual)
	return r
}

// clockSkew estimates how far the host's clock is ahead of the local one from the host's
// reading taken between local readings t0 and t1: the host read its clock at some moment of
// the round trip, so the estimate is off by at most half of it (plus the host reading's own
// resolution).
func clockSkew(t0, t1 time.Time, host float64, resolution time.Duration) (skew, uncertainty time.Duration) {
	mid := t0.Add(t1.Sub(t0) / 2)
	hostTime := time.Unix(0, int64(math.Round(host*1e9)))
	return hostTime.Sub(mid), t1.Sub(t0)/2 + resolution
}

// epochOutput is what `date +%s.%N` prints: seconds and nanoseconds, or seconds and a
// literal N from a date without %N (busybox).
var epochOutput = regexp.MustCompile(`^(-?[0-9]+)(\.[0-9]+|\.N)?$`)

// parseEpoch reads `date +%s.%N`; busybox's answer has a resolution of a second. Only that
// form is read (strconv.ParseFloat would take "NaN" or "1e9"), and only times that
// nanoseconds since 1970 can hold (clockSkew converts to them).
func parseEpoch(out string) (float64, time.Duration, error) {
	m := epochOutput.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return 0, 0, fmt.Errorf("host date: %q", out)
	}
	s, res := m[1]+m[2], time.Nanosecond
	if m[2] == ".N" {
		s, res = m[1], time.Second
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.Abs(v) >= math.MaxInt64/1e9 {
		return 0, 0, fmt.Errorf("host date: %q", out)
	}
	return v, res, nil
}

// skewStatus: beyond a second, log timestamps and --since disagree noticeably; beyond 30 s
// certificates and tokens start to fail.
func skewStatus(skew, uncertainty time.Duration) Status {
	off := skew.Abs() - uncertainty
	switch {
	case off > 30*time.Second:
		return Fail
	case off > time.Second:
		return Warn
	}
	return OK
}

func checkClock(ctx context.Context, h Commander, now func() time.Time) Result {
	r := Result{Name: nameClock}
	t0 := now()
	out, err := h.Output(ctx, "date +%s.%N")
	t1 := now()
	if err != nil {
		return warn(r, "cannot read the host's clock: "+err.Error(), "")
	}
	host, res, err := parseEpoch(string(out))
	if err != nil {
		return warn(r, err.Error(), "")
	}
	skew, unc := clockSkew(t0, t1, host, res)
	way := "ahead of"
	if skew < 0 {
		way = "behind"
	}
	detail := fmt.Sprintf("host clock %s %s this machine's (±%s)", skew.Abs().Round(time.Millisecond), way, unc.Round(time.Millisecond))
	fix := "synchronise the host's clock: sudo timedatectl set-ntp true (systemd-timesyncd) or install chrony;\ncheck this machine's clock as well"
	switch skewStatus(skew, unc) {
	case Fail:
		return fail(r, detail, fix)
	case Warn:
		return warn(r, detail, fix)
	}
	return pass(r, detail)
}
