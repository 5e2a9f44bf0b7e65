package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// fakeHost answers commands by the first rule whose key the command contains.
type fakeHost struct {
	rules     []rule
	dialErr   error
	tunnelErr error
}

type rule struct {
	key, out string
	err      error
}

func (f *fakeHost) Output(_ context.Context, cmd string) ([]byte, error) {
	for _, r := range f.rules {
		if strings.Contains(cmd, r.key) {
			return []byte(r.out), r.err
		}
	}
	return nil, fmt.Errorf("fake host: unexpected command %q", cmd)
}

// OpenChannel: the host's sshd permits the tunnel unless tunnelErr says otherwise.
func (f *fakeHost) OpenChannel(context.Context, string, []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	if f.tunnelErr != nil {
		return nil, nil, f.tunnelErr
	}
	reqs := make(chan *ssh.Request)
	close(reqs) // the channel's requests end with it
	return nopChannel{}, reqs, nil
}

func (f *fakeHost) DialUnix(context.Context, string) (net.Conn, error) {
	if f.dialErr != nil {
		return nil, f.dialErr
	}
	c1, c2 := net.Pipe()
	_ = c2.Close()
	return c1, nil
}

// with puts rules in front of the host's, so they win.
func (f *fakeHost) with(rules ...rule) *fakeHost {
	return &fakeHost{rules: append(rules, f.rules...), dialErr: f.dialErr, tunnelErr: f.tunnelErr}
}

// healthyHost is a root login on a cgroup v2 host without GPUs, with containerd 2.x.
func healthyHost() *fakeHost {
	return &fakeHost{rules: []rule{
		{key: "id -un; id -u", out: "root\n0\n"},
		{key: "ip -o addr show;", out: "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 192.0.2.10/24 brd 192.0.2.255 scope global eth0\nclient 198.51.100.7\n"},
		{key: "st=missing", out: "ok root root:root 660\n"},
		{key: "grep CapBnd", out: "CapBnd:\t000001ffffffffff\n"},
		{key: "command -v 'runc'", out: "/usr/sbin/runc\nrunc version 1.1.12\ncommit: v1.1.12\n"},
		{key: "stat -fc %T", out: "cgroup2fs\n"},
		{key: "df -Pk", out: "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 100000000 40000000 60000000 40% /\n"},
		{key: "nvidia-smi --query", out: "devices \nsmi missing\n"},
		{key: "date +%s.%N", out: "1700000000.000000000\n"},
	}}
}

type fakeRuntime struct {
	versionErr error
	status     *runtimeapi.StatusResponse
	present    map[string]bool
	pinned     string
}

func (f *fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest, ...grpc.CallOption) (*runtimeapi.VersionResponse, error) {
	if f.versionErr != nil {
		return nil, f.versionErr
	}
	return &runtimeapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "v2.2.1", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeRuntime) Status(context.Context, *runtimeapi.StatusRequest, ...grpc.CallOption) (*runtimeapi.StatusResponse, error) {
	return f.status, nil
}

func (f *fakeRuntime) ImageStatus(_ context.Context, in *runtimeapi.ImageStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ImageStatusResponse, error) {
	if f.present[in.GetImage().GetImage()] {
		return &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{RepoTags: []string{in.GetImage().GetImage()}}}, nil
	}
	return &runtimeapi.ImageStatusResponse{}, nil
}

func (f *fakeRuntime) ListImages(context.Context, *runtimeapi.ListImagesRequest, ...grpc.CallOption) (*runtimeapi.ListImagesResponse, error) {
	resp := &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{{RepoTags: []string{"busybox:1.36"}}}}
	if f.pinned != "" {
		resp.Images = append(resp.Images, &runtimeapi.Image{RepoTags: []string{f.pinned}, Pinned: true})
	}
	return resp, nil
}

func readyRuntime(config string) *fakeRuntime {
	return &fakeRuntime{
		status: &runtimeapi.StatusResponse{
			Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
				{Type: runtimeapi.RuntimeReady, Status: true}, {Type: runtimeapi.NetworkReady, Status: true},
			}},
			Info: map[string]string{
				"config":    config,
				"cniconfig": `{"PluginDirs":["/opt/cni/bin"],"PluginConfDir":"/etc/cni/net.d","Networks":[{"Config":{"Name":"cni-loopback"}},{"Config":{"Name":"satellite-loopback"}}]}`,
			},
		},
		pinned: "registry.k8s.io/pause:3.10.1",
	}
}

const criConfig2 = `{"containerdRootDir":"/var/lib/containerd","enableCDI":true,"cdiSpecDirs":["/etc/cdi","/var/run/cdi"],
"containerd":{"defaultRuntimeName":"runc","runtimes":{"runc":{"runtimeType":"io.containerd.runc.v2","options":{"BinaryName":""}}}}}`

var testOptions = Options{
	SSHTarget: "ubuntu@192.0.2.10:22", KnownHosts: "/etc/satellite/known_hosts", Socket: "/run/containerd/containerd.sock",
	ContainerdRoot: "/var/lib/containerd", PodLogDir: "/var/log/pods", ContainerdConfig: "/etc/containerd/config.toml",
	PrepareCommand: "satellite host prepare --ssh ubuntu@192.0.2.10:22",
	ClusterRanges:  []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("10.0.0.0/16")},
	Now:            func() time.Time { return time.Unix(1700000000, 0) },
}

func byName(rs []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func TestRunHealthyHost(t *testing.T) {
	t.Parallel()
	rs := Run(context.Background(), healthyHost(), readyRuntime(criConfig2), testOptions)
	if len(rs) != 16 {
		t.Fatalf("%d results, want 16", len(rs))
	}
	for _, r := range rs {
		want := OK
		if r.Name == nameNvidiaSMI || r.Name == nameGPURuntime {
			want = Warn // no GPU: fine, but said
		}
		if r.Status != want {
			t.Errorf("%s: %s %q, want %s", r.Name, r.Status, r.Detail, want)
		}
		if r.Status == Warn && (!strings.Contains(r.Detail, "fine for CPU-only hosts") || r.Fix == "") {
			t.Errorf("%s: %q, fix %q", r.Name, r.Detail, r.Fix)
		}
	}
	got := byName(rs)
	if d := got[nameCRI].Detail; d != "containerd v2.2.1, CRI v1" {
		t.Errorf("CRI detail %q", d)
	}
	if d := got[nameSandbox].Detail; d != "registry.k8s.io/pause:3.10.1 present (pinned)" {
		t.Errorf("sandbox detail %q", d)
	}
	if d := got[nameCNI].Detail; d != "NetworkReady; /etc/cni/net.d: satellite-loopback" {
		t.Errorf("CNI detail %q", d)
	}
}

func TestRunCRIDisabled(t *testing.T) {
	t.Parallel()
	h := healthyHost().with(rule{key: "cat -- '/etc/containerd/config.toml'", out: dockerConfig})
	rt := readyRuntime(criConfig2)
	rt.versionErr = fmt.Errorf("cri Version: unknown service runtime.v1.RuntimeService: %w", remote.ErrUnimplemented)
	rs := byName(Run(context.Background(), h, rt, testOptions))
	cri := rs[nameCRI]
	if cri.Status != Fail || !strings.Contains(cri.Detail, "CRI plugin disabled") {
		t.Fatalf("CRI: %+v", cri)
	}
	for _, want := range []string{
		`/etc/containerd/config.toml line 3: disabled_plugins = ["cri"]`,
		`remove "cri" from disabled_plugins`,
		"satellite host prepare --ssh ubuntu@192.0.2.10:22 --restart-containerd",
	} {
		if !strings.Contains(cri.Fix, want) {
			t.Errorf("fix lacks %q:\n%s", want, cri.Fix)
		}
	}
	for _, name := range []string{nameRuntimeReady, nameCNI, nameOOM, nameSandbox} {
		if rs[name].Status != Skip {
			t.Errorf("%s: %s, want skip", name, rs[name].Status)
		}
	}
	if rs[nameRunc].Status != OK || rs[nameDiskRoot].Status != OK {
		t.Errorf("checks that need no CRI did not run: %+v %+v", rs[nameRunc], rs[nameDiskRoot])
	}

	// No config to point at: the generic fix.
	h = healthyHost().with(rule{key: "cat -- ", err: &remote.ExitError{Code: 1, Stderr: "No such file"}})
	cri = byName(Run(context.Background(), h, rt, testOptions))[nameCRI]
	if cri.Status != Fail || !strings.Contains(cri.Fix, "containerd config dump") {
		t.Errorf("CRI without a config: %+v", cri)
	}
}

func TestRunSocket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		probe   string
		dialErr error
		want    string
	}{
		{"missing", "missing ubuntu \n", nil, "does not exist"},
		{"denied", "denied ubuntu root:root 660\n", nil, "ubuntu may not open /run/containerd/containerd.sock (root:root, mode 660)"},
		{"forwarding off", "ok ubuntu root:root 660\n", &ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "administratively prohibited"}, "sshd refuses"},
		{"stale", "ok ubuntu root:root 660\n", &ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "open failed"}, "nothing answers"},
	}
	for _, tt := range tests {
		h := healthyHost().with(rule{key: "st=missing", out: tt.probe})
		h.dialErr = tt.dialErr
		rs := byName(Run(context.Background(), h, readyRuntime(criConfig2), testOptions))
		if s := rs[nameSocket]; s.Status != Fail || !strings.Contains(s.Detail, tt.want) || s.Fix == "" {
			t.Errorf("%s: %+v", tt.name, s)
		}
		if rs[nameCRI].Status != Skip {
			t.Errorf("%s: CRI %s, want skip", tt.name, rs[nameCRI].Status)
		}
	}
}

func TestRunSSHFails(t *testing.T) {
	t.Parallel()
	h := healthyHost().with(rule{key: "id -un; id -u", err: &remote.HostKeyError{Addr: "192.0.2.10:22", Err: errors.New("key mismatch")}})
	rs := Run(context.Background(), h, readyRuntime(criConfig2), testOptions)
	if rs[0].Status != Fail || !strings.Contains(rs[0].Fix, "ssh-keyscan -p 22 -t ed25519 192.0.2.10 >> /etc/satellite/known_hosts") {
		t.Errorf("ssh: %+v", rs[0])
	}
	for _, r := range rs[1:] {
		if r.Status != Skip {
			t.Errorf("%s: %s after SSH failed", r.Name, r.Status)
		}
	}
}

func TestRunOOMScoreAdj(t *testing.T) {
	t.Parallel()
	h := healthyHost().with(rule{key: "grep CapBnd", out: "CapBnd:\t000001fffeffffff\n"})
	r := byName(Run(context.Background(), h, readyRuntime(criConfig2), testOptions))[nameOOM]
	if r.Status != Fail || !strings.Contains(r.Fix, "restrict_oom_score_adj = true") {
		t.Errorf("no CAP_SYS_RESOURCE, not restricted: %+v", r)
	}
	r = byName(Run(context.Background(), h, readyRuntime(`{"restrictOOMScoreAdj":true}`), testOptions))[nameOOM]
	if r.Status != OK {
		t.Errorf("no CAP_SYS_RESOURCE, restricted: %+v", r)
	}
}

func TestRunGPU(t *testing.T) {
	t.Parallel()
	smi := rule{key: "nvidia-smi --query", out: "devices /dev/nvidia0 /dev/nvidia1\nNVIDIA A10G, 550.54.15, 23028\nNVIDIA A10G, 550.54.15, 23028\nsmi exit 0\n"}
	tests := []struct {
		name   string
		specs  string
		config string
		want   Status
		detail string
	}{
		{"CDI", "/etc/cdi/nvidia.yaml\n", criConfig2, OK, "CDI spec /etc/cdi/nvidia.yaml; containerd's CDI is on"},
		{"CDI off", "/etc/cdi/nvidia.yaml\n", `{"enableCDI":false}`, Fail, "containerd's CDI is off"},
		{"runtime", "", `{"containerd":{"runtimes":{"nvidia":{"options":{"BinaryName":"/usr/bin/nvidia-container-runtime"}}}}}`, OK, `containerd runtime "nvidia"`},
		{"nothing", "", criConfig2, Fail, "no CDI spec for nvidia.com/gpu"},
	}
	for _, tt := range tests {
		h := healthyHost().with(smi, rule{key: "grep -ls 'nvidia.com/gpu'", out: tt.specs})
		rs := byName(Run(context.Background(), h, readyRuntime(tt.config), testOptions))
		if s := rs[nameNvidiaSMI]; s.Status != OK || s.Detail != "2x NVIDIA A10G (23028 MiB), driver 550.54.15" {
			t.Errorf("%s: nvidia-smi %+v", tt.name, s)
		}
		if r := rs[nameGPURuntime]; r.Status != tt.want || !strings.Contains(r.Detail, tt.detail) {
			t.Errorf("%s: %+v", tt.name, r)
		}
	}
	h := healthyHost().with(rule{key: "nvidia-smi --query", out: "devices /dev/nvidia0\nNVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\nsmi exit 9\n"})
	if r := byName(Run(context.Background(), h, readyRuntime(criConfig2), testOptions))[nameNvidiaSMI]; r.Status != Fail || !strings.Contains(r.Detail, "couldn't communicate") {
		t.Errorf("broken driver: %+v", r)
	}
	h = healthyHost().with(rule{key: "nvidia-smi --query", out: nvidiaOutputs[4]})
	if r := byName(Run(context.Background(), h, readyRuntime(criConfig2), testOptions))[nameNvidiaSMI]; r.Status != Warn || !strings.Contains(r.Detail, `"WARNING: infoROM is corrupted`) {
		t.Errorf("a warning among the GPUs: %+v", r)
	}
}

func TestSandboxImage(t *testing.T) {
	t.Parallel()
	cfg := criConfig{SandboxImage: "registry.k8s.io/pause:3.6"}
	rt := &fakeRuntime{present: map[string]bool{"registry.k8s.io/pause:3.6": true}}
	if r := checkSandboxImage(context.Background(), rt, healthyHost(), cfg); r.Status != OK {
		t.Errorf("present: %+v", r)
	}
	rt.present = nil
	h := healthyHost().with(rule{key: "curl", err: &remote.ExitError{Code: 6}})
	if r := checkSandboxImage(context.Background(), rt, h, cfg); r.Status != Fail || !strings.Contains(r.Detail, "registry.k8s.io does not answer") {
		t.Errorf("absent, registry unreachable: %+v", r)
	}
	h = healthyHost().with(rule{key: "curl", out: "401"})
	if r := checkSandboxImage(context.Background(), rt, h, cfg); r.Status != Warn || !strings.Contains(r.Fix, "ctr -n k8s.io images pull registry.k8s.io/pause:3.6") {
		t.Errorf("absent, pullable: %+v", r)
	}
	if r := checkSandboxImage(context.Background(), rt, h, criConfig{SandboxImage: "localhost/pause:3.10"}); r.Status != Fail {
		t.Errorf("absent localhost image: %+v", r)
	}
	if r := checkSandboxImage(context.Background(), rt, h, criConfig{}); r.Status != Warn || !strings.Contains(r.Fix, "pinned_images") {
		t.Errorf("nothing named or pinned: %+v", r)
	}
}

func TestContainerdRootMismatch(t *testing.T) {
	t.Parallel()
	r := checkContainerdRootDisk(context.Background(), healthyHost(), "/var/lib/containerd", &criConfig{ContainerdRootDir: "/data/containerd"})
	if r.Status != Warn || !strings.Contains(r.Fix, "--containerd-root /data/containerd") {
		t.Errorf("%+v", r)
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	err := WriteText(&b, []Result{
		{Name: "ssh", Status: OK, Detail: "root@h:22"},
		{Name: "containerd CRI", Status: Fail, Detail: "CRI plugin disabled", Fix: "remove \"cri\"\nthen restart"},
		{Name: "cgroup", Status: Warn, Detail: "v1", Fix: "use v2"},
		{Name: "clock skew", Status: Skip, Detail: "not checked: needs SSH"},
	})
	want := `[ ok ] ssh             root@h:22
[FAIL] containerd CRI  CRI plugin disabled
       fix: remove "cri"
            then restart
[warn] cgroup          v1
       fix: use v2
[skip] clock skew      not checked: needs SSH
1 ok, 1 warnings, 1 failed, 1 not checked
`
	if err != nil || b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// nopChannel is an SSH channel that reads nothing and takes every write.
type nopChannel struct{}

func (nopChannel) Read([]byte) (int, error)                       { return 0, io.EOF }
func (nopChannel) Write(b []byte) (int, error)                    { return len(b), nil }
func (nopChannel) Close() error                                   { return nil }
func (nopChannel) CloseWrite() error                              { return nil }
func (nopChannel) SendRequest(string, bool, []byte) (bool, error) { return false, nil }
func (nopChannel) Stderr() io.ReadWriter                          { return nil }

func TestTunnel(t *testing.T) {
	t.Parallel()
	r := checkTunnel(context.Background(), healthyHost(), testOptions)
	if r.Status != OK {
		t.Errorf("permitted: %+v", r)
	}
	h := healthyHost()
	h.tunnelErr = &ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "open failed"}
	r = checkTunnel(context.Background(), h, testOptions)
	if r.Status != Warn || !strings.Contains(r.Fix, "Match User ubuntu\n    PermitTunnel point-to-point") ||
		!strings.HasPrefix(r.Fix, "satellite host prepare --ssh ubuntu@192.0.2.10:22 --reload-sshd adds, for ubuntu only:") {
		t.Errorf("refused: %+v", r)
	}
}

func TestRanges(t *testing.T) {
	t.Parallel()
	r := checkRanges(context.Background(), healthyHost(), testOptions)
	if r.Status != OK || !strings.Contains(r.Detail, "10.96.0.0/16, 10.0.0.0/16") {
		t.Errorf("apart from the host's networks: %+v", r)
	}
	for _, bad := range []struct{ cidr, names string }{
		{"192.0.0.0/8", "192.0.2.0/24"},     // holds the host's network
		{"198.51.100.0/24", "198.51.100.7"}, // holds the address Satellite connects from
		{"169.254.0.0/16", "169.254.213.1"}, // holds the tunnel's own pair
	} {
		o := testOptions
		o.ClusterRanges = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix(bad.cidr)}
		r := checkRanges(context.Background(), healthyHost(), o)
		if r.Status != Warn || !strings.Contains(r.Detail, bad.cidr) || !strings.Contains(r.Detail, bad.names) || r.Fix == "" {
			t.Errorf("%s: %+v, want a warning naming it and %s, with a fix", bad.cidr, r, bad.names)
		}
	}
	o := testOptions
	o.ClusterRanges = nil
	if r := checkRanges(context.Background(), healthyHost(), o); r.Status != Skip || !strings.Contains(r.Detail, "--cluster-ranges") {
		t.Errorf("no ranges: %+v, want skipped, naming the flag", r)
	}
}
