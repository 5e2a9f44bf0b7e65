package doctor

import (
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
	for _, bad := range []string{"", "Filesystem\n", "h\n/dev/x 1 a b 1% /\n"} {
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
