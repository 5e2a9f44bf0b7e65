package doctor

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// dockerConfig is the config Docker's containerd.io package ships: CRI off.
const dockerConfig = `#   Copyright 2018-2022 Docker Inc.

disabled_plugins = ["cri"]

#root = "/var/lib/containerd"
#[grpc]
#  address = "/run/containerd/containerd.sock"
`

const v3Config = `version = 3
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.grpc.v1.cri"]
root = "/tmp/c/root"
[grpc]
  address = "/tmp/c/containerd.sock"
[plugins.'io.containerd.cri.v1.runtime'.cni]
  conf_dir = "/tmp/c/cni"
`

// debianConfig is Debian 12's /etc/containerd/config.toml.
const debianConfig = `version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
`

func TestFixContainerdConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		newVersion int
		w          configWants
		want       string
		changes    int
		err        string
	}{
		{name: "docker's package: CRI enabled, comments kept", in: dockerConfig,
			want: strings.Replace(dockerConfig, `disabled_plugins = ["cri"]`, `disabled_plugins = []`, 1), changes: 1},
		{name: "containerd 2 config: CRI, oom_score_adj and the plugin directory", in: v3Config,
			w: configWants{restrictOOMScoreAdj: true, cniBinDir: "/usr/lib/cni"},
			want: `version = 3
disabled_plugins = ["io.containerd.internal.v1.tracing"]
root = "/tmp/c/root"
[grpc]
  address = "/tmp/c/containerd.sock"
[plugins.'io.containerd.cri.v1.runtime'.cni]
  conf_dir = "/tmp/c/cni"
  bin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
`, changes: 3},
		{name: "debian: oom_score_adj under the CRI table", in: debianConfig, w: configWants{restrictOOMScoreAdj: true},
			want: strings.Replace(debianConfig, `[plugins."io.containerd.grpc.v1.cri"]`+"\n",
				`[plugins."io.containerd.grpc.v1.cri"]`+"\n    restrict_oom_score_adj = true\n", 1), changes: 1},
		{name: "debian: nothing needed", in: debianConfig, w: configWants{cniBinDir: "/usr/lib/cni"}, want: debianConfig},
		{name: "no file: defaults are fine", in: "", want: ""},
		{name: "no file, settings needed: a new config", in: "", newVersion: 3, w: configWants{restrictOOMScoreAdj: true},
			want: "version = 3\n\n[plugins.\"io.containerd.cri.v1.runtime\"]\n  restrict_oom_score_adj = true\n", changes: 2},
		{name: "no file, version unknown", in: "# only a comment\n", w: configWants{restrictOOMScoreAdj: true}, err: "cannot tell containerd's version"},
		{name: "version 2 plugin directory is one string", in: "version = 2\n", w: configWants{cniBinDir: "/usr/lib/cni"},
			want: "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n", changes: 1},
		{name: "bad version", in: "version = 7\n", err: "want 1, 2 or 3"},
	}
	for _, tt := range tests {
		got, changes, err := fixContainerdConfig(tt.in, tt.newVersion, tt.w)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || len(changes) != tt.changes {
			t.Errorf("%s: %v, changes %q\ngot:\n%s\nwant:\n%s", tt.name, err, changes, got, tt.want)
			continue
		}
		again, changes, err := fixContainerdConfig(got, tt.newVersion, tt.w)
		if err != nil || again != got || len(changes) != 0 {
			t.Errorf("%s: second pass changed it again (%q, %v):\n%s", tt.name, changes, err, again)
		}
	}
}

func TestContainerdConfigReads(t *testing.T) {
	t.Parallel()
	c, err := parseContainerdConfig(v3Config)
	if err != nil {
		t.Fatal(err)
	}
	found, line := c.disabledCRI()
	if len(found) != 1 || found[0] != "io.containerd.grpc.v1.cri" || line != 2 {
		t.Errorf("disabledCRI = %q line %d", found, line)
	}
	if c.confDir() != "/tmp/c/cni" || strings.Join(c.binDirs(), ",") != defaultCNIBinDir {
		t.Errorf("confDir %q binDirs %q", c.confDir(), c.binDirs())
	}
	d, _ := parseContainerdConfig(debianConfig)
	if d.confDir() != "/etc/cni/net.d" || strings.Join(d.binDirs(), ",") != "/usr/lib/cni" || d.restrictOOMScoreAdj() {
		t.Errorf("debian: confDir %q binDirs %q", d.confDir(), d.binDirs())
	}
	p, _ := parseContainerdConfig("version = 3\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = \"localhost/pause:3.10\"\n")
	if p.sandboxImage() != "localhost/pause:3.10" {
		t.Errorf("sandbox image %q", p.sandboxImage())
	}
}

func TestContainerdMajor(t *testing.T) {
	t.Parallel()
	tests := map[string]int{
		"containerd github.com/containerd/containerd/v2 v2.2.1 dea7da592f5d1d2b7755e3a161be07f43fad8f75": 2,
		"containerd containerd.io 1.6.20 2806fc1057397dbaeefbea0e4e17bddfbd388f38":                       1,
		"containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1":                         1,
		"": 0,
	}
	for in, want := range tests {
		if got := containerdMajor(in); got != want {
			t.Errorf("containerdMajor(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestParseFacts(t *testing.T) {
	t.Parallel()
	var f hostFacts
	parseFacts("containerd containerd github.com/containerd/containerd/v2 v2.2.1 abc\nCapBnd:\t000001fffeffffff\nloopback /usr/lib/cni\nconf /etc/cni/net.d/10-x.conflist\n", &f)
	if f.containerdMajor != 2 || f.canLowerOOM || strings.Join(f.loopbackIn, ",") != "/usr/lib/cni" || len(f.confFiles) != 1 {
		t.Errorf("facts %+v", f)
	}
	f = hostFacts{}
	parseFacts("CapBnd:\t000001ffffffffff\n", &f)
	if !f.canLowerOOM {
		t.Error("CAP_SYS_RESOURCE in the bounding set: the host may lower oom_score_adj")
	}
}

func TestPlanPrepare(t *testing.T) {
	t.Parallel()
	f := hostFacts{config: v3Config, configExists: true, containerdMajor: 2, canLowerOOM: true, loopbackIn: []string{"/opt/cni/bin"}, confDir: "/tmp/c/cni"}
	p, err := planPrepare(f, PrepareOptions{ContainerdConfig: "/tmp/c/config.toml"})
	if err != nil {
		t.Fatal(err)
	}
	out := p.describe()
	for _, want := range []string{
		"/tmp/c/config.toml:\n  - enable the CRI plugin: remove \"io.containerd.grpc.v1.cri\" from disabled_plugins\n",
		"/tmp/c/cni has no CNI config:\n  - add /tmp/c/cni/99-satellite-loopback.conflist",
		"--- /tmp/c/config.toml\n+++ /tmp/c/config.toml\n",
		"-disabled_plugins = [\"io.containerd.internal.v1.tracing\", \"io.containerd.grpc.v1.cri\"]\n+disabled_plugins = [\"io.containerd.internal.v1.tracing\"]\n",
		"--- /dev/null\n+++ /tmp/c/cni/99-satellite-loopback.conflist\n@@ -0,0 +1 @@\n+{\"cniVersion\":\"0.4.0\",\"name\":\"satellite-loopback\",\"plugins\":[{\"type\":\"loopback\"}]}\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if !p.containerdRestarts || p.empty() {
		t.Error("a changed config needs a restart")
	}

	f.config, f.confFiles = p.config, []string{"/tmp/c/cni/99-satellite-loopback.conflist"}
	p, err = planPrepare(f, PrepareOptions{ContainerdConfig: "/tmp/c/config.toml"})
	if err != nil || !p.empty() || !strings.HasPrefix(p.describe(), "nothing to change") {
		t.Errorf("second plan: %v\n%s", err, p.describe())
	}

	f = hostFacts{canLowerOOM: true, confDir: "/etc/cni/net.d", confFiles: []string{"x.conf"}}
	p, _ = planPrepare(f, PrepareOptions{ContainerdConfig: "/etc/containerd/config.toml"})
	if !p.empty() || !strings.Contains(p.describe(), "note: no CNI loopback plugin") {
		t.Errorf("no plugins anywhere: %s", p.describe())
	}
}

func TestPlanPrepareBinDir(t *testing.T) {
	t.Parallel()
	// Debian: the plugins are in /usr/lib/cni, which the config already names.
	f := hostFacts{config: debianConfig, configExists: true, canLowerOOM: true, loopbackIn: []string{"/usr/lib/cni"}, confDir: "/etc/cni/net.d", confFiles: []string{"x"}}
	if p, err := planPrepare(f, PrepareOptions{ContainerdConfig: "c"}); err != nil || !p.empty() {
		t.Errorf("debian: %v\n%s", err, p.describe())
	}
	if got := unique([]string{"/usr/lib/cni", "/opt/cni/bin", "/usr/lib/cni"}); strings.Join(got, ",") != "/usr/lib/cni,/opt/cni/bin" {
		t.Errorf("unique = %q", got)
	}
}

// FuzzFixContainerdConfig: a config prepare can fix comes out parsing, with CRI enabled, the
// settings asked for in place, one change line per change and nothing changed when none is
// listed; fixing it again changes nothing.
func FuzzFixContainerdConfig(f *testing.F) {
	for _, s := range tomlSeeds(f) {
		f.Add(s, uint8(2), true, "/usr/lib/cni")
		f.Add(s, uint8(3), false, "")
	}
	f.Fuzz(func(t *testing.T, text string, version uint8, oom bool, binDir string) {
		if !utf8.ValidString(binDir) {
			return // a path the host printed, put in a TOML string
		}
		w := configWants{restrictOOMScoreAdj: oom, cniBinDir: binDir}
		newVersion := int(version % 5) // 0 (unknown) to 4 (none such)
		out, changes, err := fixContainerdConfig(text, newVersion, w)
		if err != nil {
			return
		}
		c, err := parseContainerdConfig(out)
		switch {
		case err != nil:
			t.Fatalf("fixed config does not parse (%v):\n%s", err, out)
		case (len(changes) == 0) != (out == text):
			t.Fatalf("changes %q, but the text changed=%v:\n%s", changes, out != text, out)
		case oom && !c.restrictOOMScoreAdj():
			t.Fatalf("restrict_oom_score_adj not set:\n%s", out)
		case binDir != "" && !slices.Contains(c.binDirs(), binDir):
			t.Fatalf("%q not among the CNI plugin directories %q:\n%s", binDir, c.binDirs(), out)
		}
		if found, _ := c.disabledCRI(); len(found) > 0 {
			t.Fatalf("CRI still disabled (%q):\n%s", found, out)
		}
		again, changes, err := fixContainerdConfig(out, newVersion, w)
		if err != nil || again != out || len(changes) > 0 {
			t.Fatalf("fixed again: %q, %v:\n%s\nfrom:\n%s", changes, err, again, out)
		}
	})
}

// FuzzParseFacts: prepare reads the same capability bounding set as doctor's check
// (parseCapBnd) and the same containerd version as containerdMajor, and lists every loopback
// plugin directory and CNI config the probe printed.
func FuzzParseFacts(f *testing.F) {
	f.Add("containerd containerd github.com/containerd/containerd/v2 v2.2.1 abc\nCapBnd:\t000001fffeffffff\nloopback /usr/lib/cni\nconf /etc/cni/net.d/10-x.conflist\n")
	f.Add("CapBnd:\t000001ffffffffff\n")
	f.Add("containerd containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\nCapBnd:\t00000000a80425fb\nloopback /opt/cni/bin\n")
	f.Fuzz(func(t *testing.T, out string) {
		var got hostFacts
		parseFacts(out, &got)
		wantOOM := true
		if bnd, err := parseCapBnd(out); err == nil {
			wantOOM = bnd&(1<<capSysResource) != 0
		}
		var loopback, conf []string
		wantMajor := 0
		for _, line := range strings.Split(out, "\n") {
			switch kind, rest, _ := strings.Cut(line, " "); kind {
			case "containerd":
				wantMajor = containerdMajor(rest)
			case "loopback":
				loopback = append(loopback, rest)
			case "conf":
				conf = append(conf, rest)
			}
		}
		if got.canLowerOOM != wantOOM || got.containerdMajor != wantMajor || !slices.Equal(got.loopbackIn, loopback) || !slices.Equal(got.confFiles, conf) {
			t.Fatalf("parseFacts(%q) = %+v; want oom %v, containerd %d, loopback %q, conf %q", out, got, wantOOM, wantMajor, loopback, conf)
		}
	})
}
