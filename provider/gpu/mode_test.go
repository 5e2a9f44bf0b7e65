package gpu

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
)

// What containerd's verbose CRI Status says in Info["config"], cut to what matters here.
const (
	// containerd 1.6: no CDI at all.
	criConfig16 = `{"containerd":{"snapshotter":"overlayfs","defaultRuntimeName":"runc","runtimes":{"runc":{"runtimeType":"io.containerd.runc.v2"}}},"sandboxImage":"registry.k8s.io/pause:3.6"}`
	// containerd 1.7 after `nvidia-ctk runtime configure --runtime=containerd`: CDI off.
	criConfig17 = `{"containerd":{"defaultRuntimeName":"runc","runtimes":{"nvidia":{"runtimeType":"io.containerd.runc.v2","options":{"BinaryName":"/usr/bin/nvidia-container-runtime"}},` +
		`"runc":{"runtimeType":"io.containerd.runc.v2"}}},"enableCDI":false,"cdiSpecDirs":["/etc/cdi","/var/run/cdi"]}`
	// containerd 2.2: CDI on by default, spec directories of its own.
	criConfig22 = `{"containerd":{"defaultRuntimeName":"runc","runtimes":{"runc":{"runtimeType":"io.containerd.runc.v2"}}},"enableCDI":true,"cdiSpecDirs":["/srv/cdi"],"containerdRootDir":"/var/lib/containerd"}`
)

func TestParseCRIConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		config   string
		cdi      bool
		dirs     []string
		runtimes []string
	}{
		{criConfig16, false, defaultCDISpecDirs, []string{"runc"}},
		{criConfig17, false, defaultCDISpecDirs, []string{"nvidia", "runc"}},
		{criConfig22, true, []string{"/srv/cdi"}, []string{"runc"}},
		{`{"enableCDI":true}`, true, defaultCDISpecDirs, []string{}},
	}
	for _, tt := range tests {
		c, err := parseCRIConfig(map[string]string{"config": tt.config, "golang": "go1.24"})
		if err != nil {
			t.Errorf("%s: %v", tt.config, err)
			continue
		}
		if c.EnableCDI != tt.cdi || !slices.Equal(c.CDISpecDirs, tt.dirs) || !slices.Equal(c.runtimes(), tt.runtimes) {
			t.Errorf("%s: CDI %v in %q, runtimes %q; want %v in %q, %q", tt.config, c.EnableCDI, c.CDISpecDirs, c.runtimes(), tt.cdi, tt.dirs, tt.runtimes)
		}
	}
	for _, info := range []map[string]string{nil, {"config": "{"}, {"config": `{"enableCDI":"yes"}`}} {
		if _, err := parseCRIConfig(info); err == nil {
			t.Errorf("parseCRIConfig(%q) succeeded, want error", info)
		}
	}
}

func TestAutoGPUMode(t *testing.T) {
	t.Parallel()
	cfg := func(s string) criConfig {
		c, err := parseCRIConfig(map[string]string{"config": s})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		config, specs string
		want          Mode
		why           string
	}{
		{criConfig22, "/srv/cdi/nvidia.yaml\n", ModeCDI, "containerd's CDI is on and /srv/cdi/nvidia.yaml names nvidia.com/gpu"},
		{criConfig22, "/srv/cdi/a.json\n/srv/cdi/b.yaml\n", ModeCDI, "/srv/cdi/a.json, /srv/cdi/b.yaml names"},
		{criConfig22, "", ModeEnv, "no CDI spec in /srv/cdi names nvidia.com/gpu"},
		{criConfig22, "\n  \n", ModeEnv, "no CDI spec"},
		{criConfig17, "/etc/cdi/nvidia.yaml\n", ModeEnv, "containerd's CDI is off"},
		{criConfig16, "", ModeEnv, "containerd's CDI is off"},
	}
	for _, tt := range tests {
		mode, why := autoMode(cfg(tt.config), tt.specs)
		if mode != tt.want || !strings.Contains(why, tt.why) {
			t.Errorf("%s with specs %q: %s (%s), want %s (%s)", tt.config, tt.specs, mode, why, tt.want, tt.why)
		}
	}
}

func TestCDISpecCommand(t *testing.T) {
	t.Parallel()
	got := cdiSpecCommand([]string{"/etc/cdi", "/run/my cdi"})
	want := `grep -lsF 'nvidia.com/gpu' '/etc/cdi'/*.yaml '/etc/cdi'/*.json '/run/my cdi'/*.yaml '/run/my cdi'/*.json 2>/dev/null; true`
	if got != want {
		t.Errorf("cdiSpecCommand = %q\nwant %q", got, want)
	}
}

// criStatus is what a runtime's verbose CRI Status answers: a configuration, or an error.
type criStatus struct {
	config string
	err    error
}

// runtime is an in-memory runtime that answers CRI Status so.
func (st *criStatus) runtime() *fake.Runtime {
	cri := fake.NewRuntime()
	cri.Hooks.Status = func(_ context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
		if st.err != nil {
			return nil, st.err
		}
		if !r.Verbose {
			return &runtimeapi.StatusResponse{}, nil
		}
		return &runtimeapi.StatusResponse{Info: map[string]string{"config": st.config}}, nil
	}
	return cri
}

// specsHost is a host whose every command answers specs: the CDI spec look-up's answer.
func specsHost(specs string) *fake.Host {
	h := fake.NewHost()
	h.Script(fake.Command{Prefix: "", Stdout: specs})
	return h
}

// auto finds CDI where containerd has it on and a spec in its directories, env elsewhere; it
// keeps its last answer when containerd cannot be asked; it asks nothing of a host without
// GPUs or when the mode is set; containers get env until it has an answer.
func TestResolveGPUMode(t *testing.T) {
	t.Parallel()
	gpus := fourGPUs()
	tests := []struct {
		name   string
		mode   Mode
		devs   []Device
		last   Mode // the answer of an earlier reading, "" if none
		cri    *criStatus
		specs  string
		want   Mode
		lookIn string // the directory the spec look-up names, "" if none
	}{
		{"CDI on, spec", ModeAuto, gpus, "", &criStatus{config: criConfig22}, "/srv/cdi/nvidia.yaml\n", ModeCDI, "'/srv/cdi'"},
		{"CDI on, no spec", ModeAuto, gpus, "", &criStatus{config: criConfig22}, "", ModeEnv, "'/srv/cdi'"},
		{"CDI off", ModeAuto, gpus, "", &criStatus{config: criConfig17}, "/etc/cdi/nvidia.yaml\n", ModeEnv, ""},
		{"containerd unreachable, last answer kept", ModeAuto, gpus, ModeCDI, &criStatus{err: errors.New("ssh: down")}, "", ModeCDI, ""},
		{"containerd unreachable, no answer yet", ModeAuto, gpus, "", &criStatus{err: errors.New("ssh: down")}, "", "", ""},
		{"no GPUs", ModeAuto, nil, "", &criStatus{config: criConfig22}, "/srv/cdi/nvidia.yaml\n", "", ""},
		{"mode set", ModeCDI, gpus, "", &criStatus{config: criConfig17}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host := specsHost(tt.specs)
			m := New(Config{Mode: tt.mode}, tt.cri.runtime(), host)
			m.read, m.mode = tt.last != "", tt.last
			m.Observe(context.Background(), Reading{Devices: tt.devs})
			if m.mode != tt.want {
				t.Errorf("auto found %q, want %q", m.mode, tt.want)
			}
			if looked := len(host.Commands()) > 0; looked != (tt.lookIn != "") || looked && !strings.Contains(host.Commands()[0], tt.lookIn) {
				t.Errorf("commands %q, want a look in %q", host.Commands(), tt.lookIn)
			}
			want := tt.want
			switch {
			case tt.mode != ModeAuto:
				want = tt.mode
			case want == "":
				want = ModeEnv
			}
			if got := m.Mode(); got != want {
				t.Errorf("Mode() = %q, want %q", got, want)
			}
		})
	}
}

// FuzzParseCRIConfig: whatever containerd's status says, a configuration that parses has
// directories to look for CDI specs in and lists its runtimes sorted, each once.
func FuzzParseCRIConfig(f *testing.F) {
	for _, s := range []string{criConfig16, criConfig17, criConfig22, `{"cdiSpecDirs":[]}`, `null`, `{"containerd":{"runtimes":null}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCRIConfig(map[string]string{"config": s})
		if err != nil {
			return
		}
		if len(c.CDISpecDirs) == 0 {
			t.Fatalf("%q: no CDI spec directories", s)
		}
		r := c.runtimes()
		if len(r) != len(c.Containerd.Runtimes) || !sort.StringsAreSorted(r) {
			t.Fatalf("%q: runtimes %q", s, r)
		}
		mode, why := autoMode(c, "")
		if mode != ModeEnv || why == "" {
			t.Fatalf("%q: without a spec, auto is %s (%s)", s, mode, why)
		}
	})
}
