package stats

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// nodeOutput is nodeStatsCommand's output on a 2-CPU Debian 12 VM (mawk, GNU df), /proc/meminfo
// trimmed to a few of its lines besides the ones read.
const nodeOutput = `== /proc/stat
cpu  793123 0 430399 3704887 23894 0 18486 2260 0 0
btime 1795308933
== /proc/meminfo
MemTotal:       24684092 kB
MemFree:        16941100 kB
MemAvailable:   20940116 kB
Inactive(file):  1392320 kB
SwapTotal:             0 kB
SwapFree:              0 kB
AnonPages:       3222208 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
== /proc/uptime
25366.02 37048.87
== /proc/vmstat
pgfault 429689601
pgmajfault 270595
== df
Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/vda         264212084 28792328  66708936      31% /
== df -i
Filesystem       Inodes  IUsed    IFree IUse% Mounted on
/dev/vda       16777216 646009 16131207    4% /
`

func TestParseNodeSample(t *testing.T) {
	t.Parallel()
	at := time.Unix(1795334299, 0)
	s, err := parseNodeSample([]byte(nodeOutput), at)
	if err != nil {
		t.Fatal(err)
	}
	want := nodeSample{
		At: at, Uptime: 25366*time.Second + 20*time.Millisecond, Boot: time.Unix(1795308933, 0),
		// user + nice + system + irq + softirq + steal, in 10 ms ticks
		CPU:    (793123 + 0 + 430399 + 0 + 18486 + 2260) * uint64(10*time.Millisecond),
		Mem:    meminfo{Total: 24684092 << 10, Free: 16941100 << 10, InactiveFile: 1392320 << 10, Anon: 3222208 << 10, HasSwap: true},
		Faults: 429689601, MajorPF: 270595,
		FS: fsUsage{Capacity: 264212084 << 10, Used: 28792328 << 10, Available: 66708936 << 10,
			Inodes: 16777216, InodesUsed: 646009, InodesFree: 16131207},
	}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		in    string
		ticks uint64
		boot  int64
	}{
		"full /proc/stat": {"cpu  10 1 20 1000 5 3 4 2 7 0\ncpu0 5 1 10 500 2 1 2 1 3 0\nintr 12345 0 0 9\nctxt 99\nbtime 1700000000\nprocesses 4\n", 10 + 1 + 20 + 3 + 4 + 2, 1700000000},
		"before steal":    {"btime 5\ncpu 1 2 3 4 5 6 7\n", 1 + 2 + 3 + 6 + 7, 5},
		"guest in user":   {"cpu 100 0 0 0 0 0 0 0 60 0\nbtime 1\n", 100, 1},
	} {
		cpu, boot, err := parseProcStat([]byte(tt.in))
		if err != nil || cpu != tt.ticks*uint64(10*time.Millisecond) || boot != tt.boot {
			t.Errorf("%s: %d ns, boot %d, %v; want %d ticks, boot %d", name, cpu, boot, err, tt.ticks, tt.boot)
		}
	}
	for _, bad := range []string{
		"",
		"cpu 1 2 3 4 5 6 7\n",            // no btime
		"btime 5\n",                      // no cpu
		"cpu 1 2 3 4 5 6\nbtime 5\n",     // too few fields
		"cpu 1 2 x 4 5 6 7\nbtime 5\n",   // not a number
		"cpu 1 2 3 4 5 6 7\nbtime -5\n",  // boot time
		"cpu 1 2 3 4 5 6 7\nbtime 5 6\n", // btime line
		"cpu 1 1 1 1 1 1 1\ncpu 1 1 1 1 1 1 1\nbtime 5\n", // two cpu lines
		"cpu 18446744073709551615 1 0 0 0 0 0\nbtime 5\n", // overflows the sum
		"cpu 1844674407370955161 0 0 0 0 0 0\nbtime 5\n",  // overflows in nanoseconds
	} {
		if cpu, boot, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) = %d, %d; want an error", bad, cpu, boot)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	t.Parallel()
	base := "MemTotal: 1000 kB\nMemFree: 400 kB\nInactive(file): 100 kB\nAnonPages: 50 kB\n"
	m, err := parseMeminfo([]byte(base + "SwapTotal: 80 kB\nSwapFree: 30 kB\n"))
	if want := (meminfo{Total: 1000 << 10, Free: 400 << 10, InactiveFile: 100 << 10, Anon: 50 << 10, HasSwap: true, SwapTotal: 80 << 10, SwapFree: 30 << 10}); err != nil || m != want {
		t.Errorf("got %+v, %v; want %+v", m, err, want)
	}
	if m, err := parseMeminfo([]byte(base)); err != nil || m.HasSwap {
		t.Errorf("without swap lines: %+v, %v; want no swap", m, err)
	}
	for _, bad := range []string{
		"",
		"MemTotal: 1000 kB\nMemFree: 400 kB\nAnonPages: 50 kB\n", // Inactive(file) missing
		strings.Replace(base, "1000 kB", "1000 MB", 1),
		strings.Replace(base, "1000 kB", "1000", 1),
		strings.Replace(base, "1000 kB", "-1000 kB", 1),
		strings.Replace(base, "1000 kB", "18014398509481984 kB", 1), // overflows in bytes
		strings.Replace(base, "1000 kB", "0 kB", 1),
		strings.Replace(base, "400 kB", "2000 kB", 1), // more free than total
		base + "SwapTotal: lots kB\n",
	} {
		if m, err := parseMeminfo([]byte(bad)); err == nil {
			t.Errorf("parseMeminfo(%q) = %+v; want an error", bad, m)
		}
	}
}

func TestParseUptime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"25366.02 37048.87\n": 25366*time.Second + 20*time.Millisecond,
		"0.5 0.1":             500 * time.Millisecond,
		"12 3":                12 * time.Second,
	} {
		if got, err := parseUptime([]byte(in)); err != nil || got != want {
			t.Errorf("parseUptime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1.0", "x 1", "-1.0 2", "1.2.3 4", "1.0000000001 2", "99999999999 1"} {
		if got, err := parseUptime([]byte(bad)); err == nil {
			t.Errorf("parseUptime(%q) = %v; want an error", bad, got)
		}
	}
}

func TestParseDF(t *testing.T) {
	t.Parallel()
	gnu := "Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         264212084 28792328  66708936      31% /\n"
	for name, tt := range map[string]struct {
		kb, inodes string
		want       fsUsage
	}{
		"GNU": {gnu, "Filesystem       Inodes  IUsed    IFree IUse% Mounted on\n/dev/vda       16777216 646009 16131207    4% /\n",
			fsUsage{264212084 << 10, 28792328 << 10, 66708936 << 10, 16777216, 646009, 16131207}},
		"busybox": {"Filesystem           1024-blocks    Used Available Capacity Mounted on\n/dev/vda             264212084  28798240  66703024  30% /\n",
			"Filesystem              Inodes      Used Available Capacity Mounted on\n/dev/vda              16777216    646499  16130717   4% /\n",
			fsUsage{264212084 << 10, 28798240 << 10, 66703024 << 10, 16777216, 646499, 16130717}},
		"spaces in names": {"Filesystem 1024-blocks Used Available Capacity Mounted on\nmy disk 100 40 50 45% /var/lib/my containerd\n", "",
			fsUsage{Capacity: 100 << 10, Used: 40 << 10, Available: 50 << 10}},
		"btrfs has no inodes": {gnu, "Filesystem Inodes IUsed IFree IUse% Mounted on\n/dev/sda2 0 0 0 - /\n",
			fsUsage{Capacity: 264212084 << 10, Used: 28792328 << 10, Available: 66708936 << 10}},
		"df -i failed": {gnu, "", fsUsage{Capacity: 264212084 << 10, Used: 28792328 << 10, Available: 66708936 << 10}},
	} {
		got, err := parseDF([]byte(tt.kb), []byte(tt.inodes))
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"",
		"df: /nope: No such file or directory\n",
		"Filesystem 1024-blocks Used Available Capacity Mounted on\n",                            // no line
		"Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/a 10 x 5 50% /\n",       // not a number
		"Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/a 10 20 5 50% /\n",      // more used than there is
		"Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/a 1 0 0 0% /\n/dev/b\n", // two lines
		"Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/a 18014398509481984 0 0 0% /\n",
	} {
		if got, err := parseDF([]byte(bad), nil); err == nil {
			t.Errorf("parseDF(%q) = %+v; want an error", bad, got)
		}
	}
}

// The command runs with this machine's awk and df and reads back: the awk program and the
// section markers work, not only the parser.
func TestNodeStatsCommandHere(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	dir := t.TempDir()
	out, err := exec.Command("sh", "-c", nodeStatsCommand(dir)).Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s, err := parseNodeSample(out, time.Now())
	if err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	if s.CPU == 0 || s.Mem.Total == 0 || s.FS.Capacity == 0 || s.Uptime == 0 || s.Boot.After(time.Now()) {
		t.Errorf("implausible sample %+v from\n%s", s, out)
	}
	if strings.Contains(string(out), "\nintr ") || strings.Contains(string(out), "\ncpu0 ") {
		t.Errorf("the command printed /proc/stat lines it does not need:\n%s", out)
	}
}

func TestNodeStatsCommandQuotesTheRoot(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	dir := t.TempDir() + "/it's $(touch pwned) here"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", nodeStatsCommand(dir))
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseNodeSample(out, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cmd.Dir + "/pwned"); err == nil {
		t.Fatal("the root path ran as a command")
	}
}

// FuzzParseNodeSample: any output either fails or gives a sample whose figures hold together:
// used and free within the totals, boot time positive.
func FuzzParseNodeSample(f *testing.F) {
	f.Add([]byte(nodeOutput))
	f.Add([]byte(strings.ReplaceAll(nodeOutput, "== df -i", "== other")))
	f.Add([]byte("== /proc/stat\ncpu 1 2 3 4 5 6 7\nbtime 5\n== /proc/meminfo\nMemTotal: 1 kB\nMemFree: 0 kB\nInactive(file): 0 kB\nAnonPages: 0 kB\n== /proc/uptime\n1 1\n== df\nFilesystem x\n/ 1 0 1 0% /\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		s, err := parseNodeSample(out, time.Unix(0, 0))
		if err != nil {
			return
		}
		if s.Mem.Total == 0 || s.Mem.Free > s.Mem.Total || s.FS.Used > s.FS.Capacity || s.FS.Available > s.FS.Capacity ||
			s.FS.InodesUsed > s.FS.Inodes || s.FS.InodesFree > s.FS.Inodes || s.Boot.Unix() <= 0 || s.Uptime < 0 ||
			s.Mem.HasSwap && s.Mem.SwapFree > s.Mem.SwapTotal || s.CPU%uint64(10*time.Millisecond) != 0 {
			t.Fatalf("inconsistent sample %+v from %q", s, out)
		}
		// The summary built from it holds together too.
		n := nodeStats("n", s, nil)
		if *n.Memory.WorkingSetBytes > *n.Memory.UsageBytes || *n.Memory.AvailableBytes > s.Mem.Total {
			t.Fatalf("node memory %+v from %+v", n.Memory, s.Mem)
		}
	})
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("cpu  10 1 20 1000 5 3 4 2 7 0\ncpu0 5 1 10 500 2 1 2 1 3 0\nbtime 1700000000\n"))
	f.Add([]byte("cpu 1 2 3 4 5 6 7\nbtime 5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cpu, boot, err := parseProcStat(b)
		if err == nil && (boot <= 0 || cpu%uint64(10*time.Millisecond) != 0) {
			t.Fatalf("%d ns, boot %d from %q", cpu, boot, b)
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add([]byte("MemTotal: 1000 kB\nMemFree: 400 kB\nInactive(file): 100 kB\nAnonPages: 50 kB\nSwapTotal: 8 kB\nSwapFree: 3 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMeminfo(b)
		if err == nil && (m.Total == 0 || m.Free > m.Total || m.Total%1024 != 0 || m.HasSwap && m.SwapFree > m.SwapTotal) {
			t.Fatalf("%+v from %q", m, b)
		}
	})
}

func FuzzParseUptime(f *testing.F) {
	f.Add([]byte("25366.02 37048.87\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseUptime(b); err == nil && d < 0 {
			t.Fatalf("%v from %q", d, b)
		}
	})
}

func FuzzParseDF(f *testing.F) {
	f.Add([]byte("Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         264212084 28792328  66708936      31% /\n"),
		[]byte("Filesystem       Inodes  IUsed    IFree IUse% Mounted on\n/dev/vda       16777216 646009 16131207    4% /\n"))
	f.Add([]byte("Filesystem 1024-blocks Used Available Capacity Mounted on\nmy disk 100 40 50 45% /a b\n"), []byte("Filesystem Inodes IUsed IFree IUse% Mounted on\n/dev/sda2 0 0 0 - /\n"))
	f.Fuzz(func(t *testing.T, kb, inodes []byte) {
		u, err := parseDF(kb, inodes)
		if err == nil && (u.Used > u.Capacity || u.Available > u.Capacity || u.Capacity%1024 != 0 ||
			u.InodesUsed > u.Inodes || u.InodesFree > u.Inodes) {
			t.Fatalf("%+v from %q and %q", u, kb, inodes)
		}
	})
}
