package doctor

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseDF(t *testing.T) {
	t.Parallel()
	out := "Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         264212084 25035632  70465632      27% /mnt/my disk\n"
	d, err := parseDF(out)
	if err != nil || d.mount != "/mnt/my disk" || d.usedK != 25035632 || d.availK != 70465632 {
		t.Fatalf("parseDF = %+v, %v", d, err)
	}
	if p := d.freePercent(); p < 73.7 || p > 73.8 {
		t.Errorf("free %.2f%%, want 73.8%% (as df's Capacity 27%% says)", p)
	}
	for _, bad := range []string{"", "Filesystem\n", "h\n/dev/x 1 a b 1% /\n", "h\nMy FS 264212084 25035632 70465632 27% /\n"} {
		if _, err := parseDF(bad); err == nil {
			t.Errorf("parseDF(%q) succeeded", bad)
		}
	}
	tests := map[float64]Status{50: OK, 10: OK, 9.9: Warn, 2: Warn, 1.9: Fail, 0: Fail}
	for free, want := range tests {
		if got := diskStatus(free); got != want {
			t.Errorf("diskStatus(%v) = %s, want %s", free, got, want)
		}
	}
}

func TestParseNvidia(t *testing.T) {
	t.Parallel()
	s := parseNvidia("devices /dev/nvidia0 /dev/nvidia1 \nNVIDIA H100 80GB HBM3, 550.54.15, 81559\nTesla T4, 550.54.15, 15360\nsmi exit 0\n")
	if s.smi != "0" || len(s.devices) != 2 || len(s.gpus) != 2 || s.gpus[0] != (gpu{"NVIDIA H100 80GB HBM3", "550.54.15", 81559}) {
		t.Fatalf("parseNvidia = %+v", s)
	}
	if d := describeGPUs(s.gpus); d != "1x NVIDIA H100 80GB HBM3 (81559 MiB), 1x Tesla T4 (15360 MiB), driver 550.54.15" {
		t.Errorf("describeGPUs = %q", d)
	}
	if s := parseNvidia("devices \nsmi missing\n"); s.smi != "missing" || len(s.devices) != 0 || len(s.gpus) != 0 {
		t.Errorf("no GPU: %+v", s)
	}
	if s := parseNvidia("devices /dev/nvidia0\nNo devices were found\nsmi exit 6\n"); s.output != "No devices were found" || len(s.gpus) != 0 {
		t.Errorf("failing nvidia-smi: %+v", s)
	}
	s = parseNvidia(nvidiaOutputs[3])
	if want := []gpu{{"Some GPU, Rev 2", "550.90.07", 1024}, {"NVIDIA GH200 480GB", "560.35.03", 0}}; !slices.Equal(s.gpus, want) || s.output != "" {
		t.Errorf("a name with a comma, memory [N/A]: %+v", s)
	}
	if s := parseNvidia(nvidiaOutputs[4]); len(s.gpus) != 1 || s.output != "WARNING: infoROM is corrupted at gpu 0000:00:1E.0" {
		t.Errorf("a warning among the GPUs: %+v", s)
	}
}

func TestParseCapBnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		canLower bool
	}{
		{"CapInh:\t0000000000000000\nCapBnd:\t000001ffffffffff\n", true},
		{"CapBnd:\t000001fffeffffff\n", false}, // a container without CAP_SYS_RESOURCE
		{"CapBnd:\t00000000a80425fb\n", false}, // Docker's default set
	}
	for _, tt := range tests {
		bnd, err := parseCapBnd(tt.in)
		if err != nil || (bnd&(1<<capSysResource) != 0) != tt.canLower {
			t.Errorf("parseCapBnd(%q) = %x, %v", tt.in, bnd, err)
		}
	}
	if _, err := parseCapBnd("nothing"); err == nil {
		t.Error("no CapBnd line accepted")
	}
}

func TestClockSkew(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	tests := []struct {
		name      string
		rtt       time.Duration
		host      string
		skew, unc time.Duration
		want      Status
	}{
		{"in sync", 100 * time.Millisecond, "1700000000.050000000", 0, 50 * time.Millisecond, OK},
		{"2 s ahead", 100 * time.Millisecond, "1700000002.050000000", 2 * time.Second, 50 * time.Millisecond, Warn},
		{"a minute behind", 0, "1699999940.000000000", -time.Minute, 0, Fail},
		{"1.5 s off, but a 2 s round trip", 2 * time.Second, "1700000002.500000000", 1500 * time.Millisecond, time.Second, OK},
		{"busybox date: second resolution", 0, "1700000005.N", 5 * time.Second, time.Second, Warn},
	}
	for _, tt := range tests {
		host, res, err := parseEpoch(tt.host)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		skew, unc := clockSkew(t0, t0.Add(tt.rtt), host, res)
		if (skew-tt.skew).Abs() > time.Microsecond || (unc-tt.unc).Abs() > time.Microsecond {
			t.Errorf("%s: skew %v ± %v, want %v ± %v", tt.name, skew, unc, tt.skew, tt.unc)
		}
		if got := skewStatus(skew, unc); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if _, _, err := parseEpoch("Thu Jan 1"); err == nil {
		t.Error("parseEpoch accepted a date")
	}
}

func TestSmallParsers(t *testing.T) {
	t.Parallel()
	registries := map[string]string{
		"registry.k8s.io/pause:3.10.1": "registry.k8s.io",
		"busybox":                      "registry-1.docker.io",
		"library/busybox:1.36":         "registry-1.docker.io",
		"docker.io/library/busybox":    "registry-1.docker.io",
		"localhost/satellite/pause":    "localhost",
		"10.0.0.1:5000/pause":          "10.0.0.1:5000",
	}
	for image, want := range registries {
		if got := registryHost(image); got != want {
			t.Errorf("registryHost(%q) = %q, want %q", image, got, want)
		}
	}
	if where, v := parseRunc("/usr/sbin/runc\nrunc version 1.1.5+ds1\ncommit: x\n"); where != "/usr/sbin/runc" || v != "runc 1.1.5+ds1" {
		t.Errorf("parseRunc = %q %q", where, v)
	}
	if s := parseSocketProbe("denied ubuntu root:root 660\n"); s != (socketState{"denied", "ubuntu", "root:root", "660"}) {
		t.Errorf("parseSocketProbe = %+v", s)
	}
	if h, p := splitTarget("root@[2001:db8::1]:2222"); h != "2001:db8::1" || p != "2222" {
		t.Errorf("splitTarget = %q %q", h, p)
	}
	if major, minor, ok := parseVersion("1.6.20~ds1"); !ok || major != 1 || minor != 6 {
		t.Errorf("parseVersion = %d.%d %v", major, minor, ok)
	}
}

// dfOutputs are `df -Pk` answers: a Debian 12 VM's root, a mount point with a space, and
// pseudo-filesystems, whose Capacity is "-".
var dfOutputs = []string{
	"Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         264212084 25035632  70465632      27% /mnt/my disk\n",
	"Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/sda1         30298176 6150220  22586928      22% /\n",
	"Filesystem     1024-blocks  Used Available Capacity Mounted on\nproc                     0     0         0        - /proc\n",
	"Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 100000000 40000000 60000000 40% /\n",
	"", "Filesystem\n", "h\n/dev/x 1 a b 1% /\n",
}

// FuzzParseDF: a row that parses has its columns where POSIX puts them (the Capacity a
// percentage or "-"), sizes that add up without overflow, a free share between 0 and 100,
// and printed back as df prints it, parses to the same row.
func FuzzParseDF(f *testing.F) {
	for _, s := range dfOutputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		d, err := parseDF(out)
		if err != nil {
			return
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		cols := strings.Fields(lines[len(lines)-1])
		if _, err := strconv.ParseUint(cols[1], 10, 64); err != nil || cols[4] != "-" && !regexp.MustCompile(`^[0-9]+%$`).MatchString(cols[4]) {
			t.Fatalf("row %q accepted, but its size or capacity column is not one: %+v", cols, d)
		}
		if d.usedK+d.availK < d.usedK {
			t.Fatalf("%d + %d KiB overflows", d.usedK, d.availK)
		}
		if p := d.freePercent(); !(p >= 0 && p <= 100) {
			t.Fatalf("%+v: %v%% free", d, p)
		}
		if d.mount == "" || d.mount != strings.Join(strings.Fields(d.mount), " ") {
			t.Fatalf("mount point %q", d.mount)
		}
		printed := fmt.Sprintf("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x %d %d %d 1%% %s\n", d.usedK+d.availK, d.usedK, d.availK, d.mount)
		if again, err := parseDF(printed); err != nil || again != d {
			t.Fatalf("printed back as %q: %+v, %v; want %+v", printed, again, err, d)
		}
	})
}

// dateOutput is what `date +%s.%N` prints: GNU date's seconds and nanoseconds, or busybox's
// seconds and a literal N.
var dateOutput = regexp.MustCompile(`^(-?[0-9]+)(\.[0-9]+|\.N)?$`)

// FuzzParseEpoch: the host's clock reads only from what date prints (dateOutput), as a
// finite time that nanoseconds since 1970 can hold, with second resolution exactly for
// busybox's answer; the skew from a local clock is the difference of the two.
func FuzzParseEpoch(f *testing.F) {
	for _, s := range []string{"1700000000.050000000", "1700000002.050000000\n", "1699999940.000000000", "1700000005.N", "Thu Jan 1", "", "NaN", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		v, res, err := parseEpoch(out)
		m := dateOutput.FindStringSubmatch(strings.TrimSpace(out))
		if err != nil {
			if m != nil && len(m[1]) < 10 {
				t.Fatalf("parseEpoch(%q): %v", out, err)
			}
			return
		}
		if m == nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= math.MaxInt64/1e9 {
			t.Fatalf("parseEpoch(%q) = %v, accepted", out, v)
		}
		if wantRes := map[bool]time.Duration{true: time.Second, false: time.Nanosecond}[m[2] == ".N"]; res != wantRes {
			t.Fatalf("parseEpoch(%q): resolution %v, want %v", out, res, wantRes)
		}
		want, _ := strconv.ParseFloat(m[1]+strings.TrimSuffix(m[2], ".N"), 64)
		if v != want {
			t.Fatalf("parseEpoch(%q) = %v, want %v", out, v, want)
		}
		local := time.Unix(1700000000, 0)
		skew, unc := clockSkew(local, local, v, res)
		if unc != res || (skew-time.Unix(0, int64(math.Round(v*1e9))).Sub(local)).Abs() > time.Microsecond {
			t.Fatalf("host at %v s, local at %v: skew %v ± %v", v, local.Unix(), skew, unc)
		}
	})
}

// nvidiaOutputs are answers to nvidiaProbe: GPUs (a name with a comma, an H100, a T4), no
// nvidia-smi, a failing one, and a warning nvidia-smi prints among the GPUs.
var nvidiaOutputs = []string{
	"devices /dev/nvidia0 /dev/nvidia1 \nNVIDIA H100 80GB HBM3, 550.54.15, 81559\nTesla T4, 550.54.15, 15360\nsmi exit 0\n",
	"devices \nsmi missing\n",
	"devices /dev/nvidia0\nNo devices were found\nsmi exit 6\n",
	"devices /dev/nvidia0\nSome GPU, Rev 2, 550.90.07, 1024\nNVIDIA GH200 480GB, 560.35.03, [N/A]\nsmi exit 0\n",
	"devices /dev/nvidia0\nWARNING: infoROM is corrupted at gpu 0000:00:1E.0\nTesla T4, 470.82.01, 15360\nsmi exit 0\n",
}

// FuzzParseNvidia: when nvidia-smi succeeded, every line it printed is either one GPU or
// kept as output to show, GPUs have a name, a driver and no negative memory, and printed
// back as nvidia-smi prints them, parse to the same GPUs; when it failed there are no GPUs.
func FuzzParseNvidia(f *testing.F) {
	for _, s := range nvidiaOutputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		s := parseNvidia(out)
		if s.smi != "0" {
			if len(s.gpus) > 0 {
				t.Fatalf("nvidia-smi %q, yet GPUs %+v", s.smi, s.gpus)
			}
			return
		}
		var body int
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			marker := strings.HasPrefix(l, "devices") || l == "smi missing" || strings.HasPrefix(l, "smi exit ")
			if !marker && strings.TrimSpace(l) != "" {
				body++
			}
		}
		var shown int
		if s.output != "" {
			shown = len(strings.Split(s.output, "\n"))
		}
		if len(s.gpus)+shown != body {
			t.Fatalf("%d lines, %d GPUs and %d lines shown: %+v", body, len(s.gpus), shown, s)
		}
		var printed strings.Builder
		printed.WriteString("devices \n")
		for _, g := range s.gpus {
			if g.name == "" || g.name != strings.TrimSpace(g.name) || g.driver == "" || strings.Contains(g.driver, ",") || g.memoryMiB < 0 {
				t.Fatalf("bad GPU %+v", g)
			}
			fmt.Fprintf(&printed, "%s, %s, %d\n", g.name, g.driver, g.memoryMiB)
		}
		printed.WriteString("smi exit 0\n")
		if again := parseNvidia(printed.String()); !slices.Equal(again.gpus, s.gpus) || again.output != "" {
			t.Fatalf("printed back as %q: %+v; want %+v", printed.String(), again, s.gpus)
		}
	})
}

// probeAnswers are what the host answers doctor's smaller probes.
var probeAnswers = []string{
	"/usr/sbin/runc\nrunc version 1.1.5+ds1\ncommit: x\n",
	"/usr/bin/runc\nrunc version 1.1.12\ncommit: v1.1.12-0-g51d5e946\nspec: 1.0.2-dev\ngo: go1.20.13\nlibseccomp: 2.5.4\n",
	"denied ubuntu root:root 660\n", "ok root root:root 660\n", "missing ubuntu\n",
	"containerd github.com/containerd/containerd/v2 v2.2.1 dea7da592f5d1d2b7755e3a161be07f43fad8f75",
	"containerd containerd.io 1.6.20 2806fc1057397dbaeefbea0e4e17bddfbd388f38", "1.6.20~ds1", "v2.2.1",
	"CapInh:\t0000000000000000\nCapBnd:\t000001ffffffffff\n", "CapBnd:\t00000000a80425fb\n",
	"registry.k8s.io/pause:3.10.1", "localhost/satellite/pause", "10.0.0.1:5000/pause", "busybox",
	criConfig2, `{"containerd":{"runtimes":{"nvidia":{"options":{"BinaryName":"/usr/bin/nvidia-container-runtime"}}}}}`,
	`{"PluginDirs":["/opt/cni/bin"],"PluginConfDir":"/etc/cni/net.d","Networks":[{"Config":{"Name":"cni-loopback"}}]}`,
}

// FuzzProbeAnswers: the smaller readings keep to their shape whatever the host prints: runc's
// path and version are one trimmed line each; the socket probe's fields are its first four
// words; a containerd version is the number printed or none (0, not ok), never a number that
// overflowed; the bounding set prints back; a registry is one name; the verbose CRI info
// names runtimes it has; a config split into lines joins back.
func FuzzProbeAnswers(f *testing.F) {
	for _, s := range probeAnswers {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if where, version := parseRunc(s); strings.Contains(where+version, "\n") || where != strings.TrimSpace(where) || version != strings.TrimSpace(version) {
			t.Fatalf("parseRunc(%q) = %q, %q", s, where, version)
		}
		w := append(strings.Fields(s), "", "", "", "")
		if st := parseSocketProbe(s); st != (socketState{w[0], w[1], w[2], w[3]}) {
			t.Fatalf("parseSocketProbe(%q) = %+v", s, st)
		}
		if major, minor, ok := parseVersion(s); ok {
			m := versionRE.FindStringSubmatch(s)
			if fmt.Sprint(major) != number(m[1]) || fmt.Sprint(minor) != number(m[2]) {
				t.Fatalf("parseVersion(%q) = %d.%d", s, major, minor)
			}
		}
		if major := containerdMajor(s); major != 0 {
			if m := containerdVersionRE.FindStringSubmatch(s); m == nil || fmt.Sprint(major) != number(m[1]) {
				t.Fatalf("containerdMajor(%q) = %d", s, major)
			}
		}
		if bnd, err := parseCapBnd(s); err == nil {
			if again, err := parseCapBnd(fmt.Sprintf("CapBnd:\t%016x\n", bnd)); err != nil || again != bnd {
				t.Fatalf("parseCapBnd(%q) = %x, printed back %x, %v", s, bnd, again, err)
			}
		}
		if reg := registryHost(s); reg == "" || strings.Contains(reg, "/") {
			t.Fatalf("registryHost(%q) = %q", s, reg)
		}
		if cfg, _, err := parseCRIInfo(map[string]string{"config": s, "cniconfig": s}); err == nil {
			if cfg.binary(cfg.Containerd.DefaultRuntimeName) == "" {
				t.Fatalf("config %q: no runtime binary", s)
			}
			if name := cfg.nvidiaRuntime(); name != "" {
				if _, ok := cfg.Containerd.Runtimes[name]; !ok {
					t.Fatalf("config %q: NVIDIA runtime %q is none of its runtimes", s, name)
				}
			}
		}
		want := s
		if s != "" && !strings.HasSuffix(s, "\n") {
			want += "\n"
		}
		lines := splitLines(s)
		for _, l := range lines {
			if strings.Index(l, "\n") != len(l)-1 {
				t.Fatalf("splitLines(%q): line %q", s, l)
			}
		}
		if strings.Join(lines, "") != want {
			t.Fatalf("splitLines(%q) = %q", s, lines)
		}
	})
}

// number is a decimal number without its leading zeros.
func number(digits string) string {
	if n := strings.TrimLeft(digits, "0"); n != "" {
		return n
	}
	return "0"
}
