package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/satellite-vk/satellite/remote"
)

// nodeSample is one reading of the host's CPU, memory and containerd root filesystem, what the
// kubelet reads from the root cgroup through cAdvisor for its node's stats.
type nodeSample struct {
	At      time.Time     // when Satellite received the reading
	Uptime  time.Duration // the host's /proc/uptime: the interval between two readings
	Boot    time.Time     // /proc/stat btime
	CPU     uint64        // CPU time used since boot, all CPUs, in nanoseconds
	Mem     meminfo
	Faults  uint64 // /proc/vmstat pgfault
	MajorPF uint64 // /proc/vmstat pgmajfault
	FS      fsUsage
}

// meminfo is what /proc/meminfo says, in bytes.
type meminfo struct {
	Total, Free, InactiveFile, Anon uint64
	// HasSwap says SwapTotal and SwapFree were there.
	HasSwap             bool
	SwapTotal, SwapFree uint64
}

// fsUsage is what df says of the filesystem holding containerd's root.
type fsUsage struct {
	Capacity, Used, Available uint64 // bytes
	// Inodes is 0 when the filesystem does not count inodes (btrfs) or df -i failed.
	Inodes, InodesUsed, InodesFree uint64
}

// userHZ is the unit of /proc/stat's CPU times. The kernel exports USER_HZ = 100 to user space
// on every architecture Kubernetes supports (include/asm-generic/param.h); CONFIG_HZ does not
// change it.
const userHZ = 100

// Section markers of nodeStatsCommand's output.
const (
	sectionStat    = "/proc/stat"
	sectionMeminfo = "/proc/meminfo"
	sectionUptime  = "/proc/uptime"
	sectionVMStat  = "/proc/vmstat"
	sectionDF      = "df"
	sectionDFi     = "df -i"
)

// nodeStatsCommand reads everything a node sample needs in one SSH session: one awk over
// /proc, printing only the lines used (/proc/stat's per-CPU and interrupt lines are long on big
// machines), and df -P of containerd's root for bytes and inodes. Each part starts with a
// "== <name>" line.
func nodeStatsCommand(containerdRoot string) string {
	root := remote.Quote(containerdRoot)
	return `awk 'FNR == 1 { print "== " FILENAME } ` +
		`FILENAME == "/proc/stat" && !/^(cpu|btime) / { next } ` +
		`FILENAME == "/proc/vmstat" && !/^pg(maj)?fault / { next } { print }' ` +
		`/proc/stat /proc/meminfo /proc/uptime /proc/vmstat; ` +
		`echo '== df'; df -kP ` + root + `; echo '== df -i'; df -iP ` + root + ` 2>/dev/null; true`
}

// parseNodeSample reads nodeStatsCommand's output, received at the given time.
func parseNodeSample(out []byte, at time.Time) (nodeSample, error) {
	sec := splitSections(out)
	s := nodeSample{At: at}
	var err error
	var boot int64
	if s.CPU, boot, err = parseProcStat(sec[sectionStat]); err != nil {
		return s, err
	}
	s.Boot = time.Unix(boot, 0)
	if s.Mem, err = parseMeminfo(sec[sectionMeminfo]); err != nil {
		return s, err
	}
	if s.Uptime, err = parseUptime(sec[sectionUptime]); err != nil {
		return s, err
	}
	s.Faults, s.MajorPF = parseVMStat(sec[sectionVMStat])
	if s.FS, err = parseDF(sec[sectionDF], sec[sectionDFi]); err != nil {
		return s, err
	}
	return s, nil
}

// splitSections cuts the output at its "== <name>" lines.
func splitSections(out []byte) map[string][]byte {
	sec := map[string][]byte{}
	name := ""
	for _, line := range bytes.SplitAfter(out, []byte("\n")) {
		if n, ok := bytes.CutPrefix(line, []byte("== ")); ok {
			name = string(bytes.TrimSpace(n))
			continue
		}
		sec[name] = append(sec[name], line...)
	}
	return sec
}

// parseProcStat reads the aggregate "cpu" line and "btime" of /proc/stat (proc(5)). The CPU
// time used is what the kernel reports as the root cgroup's usage on cgroup v2, which is what
// cAdvisor gives the kubelet for its node (root_cgroup_cputime in kernel/cgroup/rstat.c):
// user + nice + system + irq + softirq + steal. Guest time is already inside user.
func parseProcStat(b []byte) (cpuNanos uint64, boot int64, err error) {
	var haveCPU, haveBoot bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "cpu":
			if haveCPU {
				return 0, 0, fmt.Errorf("/proc/stat: two cpu lines")
			}
			if cpuNanos, err = cpuLine(f[1:]); err != nil {
				return 0, 0, err
			}
			haveCPU = true
		case "btime":
			if len(f) != 2 {
				return 0, 0, fmt.Errorf("/proc/stat: btime line %q", sc.Text())
			}
			if boot, err = strconv.ParseInt(f[1], 10, 64); err != nil || boot <= 0 {
				return 0, 0, fmt.Errorf("/proc/stat: btime %q is not a time", f[1])
			}
			haveBoot = true
		}
	}
	if !haveCPU || !haveBoot {
		return 0, 0, fmt.Errorf("/proc/stat: no cpu or btime line")
	}
	return cpuNanos, boot, nil
}

// cpuLine sums the used fields of the aggregate cpu line: user nice system idle iowait irq
// softirq [steal [guest [guest_nice]]] (steal since Linux 2.6.11).
func cpuLine(f []string) (uint64, error) {
	if len(f) < 7 {
		return 0, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 7", len(f))
	}
	var ticks uint64
	for i, v := range f {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: cpu field %d %q is not a number", i+1, v)
		}
		switch i {
		case 0, 1, 2, 5, 6, 7: // user nice system irq softirq steal
			if ticks+n < ticks {
				return 0, fmt.Errorf("/proc/stat: cpu time overflows")
			}
			ticks += n
		}
	}
	const nanosPerTick = uint64(time.Second) / userHZ
	if ticks > ^uint64(0)/nanosPerTick {
		return 0, fmt.Errorf("/proc/stat: cpu time overflows")
	}
	return ticks * nanosPerTick, nil
}

// parseMeminfo reads the fields of /proc/meminfo the node's memory stats need: "Key: <n> kB".
// SwapTotal and SwapFree may be missing.
func parseMeminfo(b []byte) (meminfo, error) {
	var m meminfo
	want := map[string]*uint64{"MemTotal": &m.Total, "MemFree": &m.Free, "Inactive(file)": &m.InactiveFile, "AnonPages": &m.Anon}
	swap := map[string]*uint64{"SwapTotal": &m.SwapTotal, "SwapFree": &m.SwapFree}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		dst, required := want[k]
		if !required {
			dst = swap[k]
		}
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(v)
		var n uint64
		var err error
		if len(f) == 2 && f[1] == "kB" {
			n, err = strconv.ParseUint(f[0], 10, 64)
		}
		if len(f) != 2 || f[1] != "kB" || err != nil || n > ^uint64(0)/1024 {
			return meminfo{}, fmt.Errorf("/proc/meminfo: %s: %q is not a number of kB", k, strings.TrimSpace(v))
		}
		*dst = n * 1024
		delete(want, k)
		delete(swap, k)
	}
	if len(want) > 0 || m.Total == 0 || m.Free > m.Total {
		return meminfo{}, fmt.Errorf("/proc/meminfo: want MemTotal, MemFree, Inactive(file) and AnonPages, MemFree below MemTotal")
	}
	m.HasSwap = len(swap) == 0 && m.SwapFree <= m.SwapTotal
	return m, nil
}

// parseUptime reads /proc/uptime: seconds since boot, then idle seconds, with two decimals.
func parseUptime(b []byte) (time.Duration, error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("/proc/uptime: %q", b)
	}
	whole, frac, _ := strings.Cut(f[0], ".")
	s, err := strconv.ParseUint(whole, 10, 32) // 136 years
	if err != nil || len(frac) > 9 {
		return 0, fmt.Errorf("/proc/uptime: %q is not a number of seconds", f[0])
	}
	var ns uint64
	if frac != "" {
		if ns, err = strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("/proc/uptime: %q is not a number of seconds", f[0])
		}
	}
	return time.Duration(s)*time.Second + time.Duration(ns), nil
}

// parseVMStat reads pgfault and pgmajfault of /proc/vmstat (0 when absent: they only fill
// the summary's page fault counts).
func parseVMStat(b []byte) (faults, major uint64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "pgfault":
			faults = n
		case "pgmajfault":
			major = n
		}
	}
	return faults, major
}

// parseDF reads `df -kP <dir>` and `df -iP <dir>` (POSIX format: a header, then "filesystem
// total used available capacity% mountpoint"). Inodes are optional: df -i fails on some
// systems, and btrfs reports none.
func parseDF(kb, inodes []byte) (fsUsage, error) {
	total, used, avail, err := dfLine(kb)
	if err != nil {
		return fsUsage{}, fmt.Errorf("df -kP: %w", err)
	}
	if total > ^uint64(0)/1024 || used > total || avail > total {
		return fsUsage{}, fmt.Errorf("df -kP: %d kB used and %d available of %d", used, avail, total)
	}
	u := fsUsage{Capacity: total * 1024, Used: used * 1024, Available: avail * 1024}
	if it, iu, ifree, err := dfLine(inodes); err == nil && it > 0 && iu <= it && ifree <= it {
		u.Inodes, u.InodesUsed, u.InodesFree = it, iu, ifree
	}
	return u, nil
}

// dfLine finds the three counts of df -P's data line: the three numbers before the capacity
// percentage ("-" where the filesystem has no inodes). A device name or mount point with
// spaces moves the columns; the percentage anchors them.
func dfLine(b []byte) (total, used, avail uint64, err error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "Filesystem") {
		return 0, 0, 0, fmt.Errorf("want a header and one line, got %q", b)
	}
	f := strings.Fields(lines[1])
	for i := 3; i < len(f); i++ {
		if !strings.HasSuffix(f[i], "%") && f[i] != "-" {
			continue
		}
		var n [3]uint64
		ok := true
		for j := range n {
			if n[j], err = strconv.ParseUint(f[i-3+j], 10, 64); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return n[0], n[1], n[2], nil
		}
	}
	return 0, 0, 0, fmt.Errorf("no counts in %q", lines[1])
}
