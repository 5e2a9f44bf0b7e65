package volumes

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/remote"
)

func TestSubPathOf(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"POD": "web-0", "EMPTY": ""}
	for _, tc := range []struct {
		vm      corev1.VolumeMount
		want    string
		wantErr string
	}{
		{vm: corev1.VolumeMount{}, want: ""},
		{vm: corev1.VolumeMount{SubPath: "a/b"}, want: "a/b"},
		{vm: corev1.VolumeMount{SubPath: "a//./b"}, want: "a//./b"}, // cleaned on the host, as by the kubelet
		{vm: corev1.VolumeMount{SubPathExpr: "logs/$(POD)"}, want: "logs/web-0"},
		{vm: corev1.VolumeMount{SubPathExpr: "$$(POD)"}, want: "$(POD)"},
		{vm: corev1.VolumeMount{SubPathExpr: "$(NOPE)/$(EMPTY)/$(POD)"}, wantErr: "missing value for EMPTY, NOPE"},
		{vm: corev1.VolumeMount{SubPathExpr: "/$(POD)"}, wantErr: "error SubPath `/web-0` must not be an absolute path"},
		{vm: corev1.VolumeMount{SubPathExpr: "$(POD)/../.."}, wantErr: "unable to provision SubPath `web-0/../..`: must not contain '..'"},
		{vm: corev1.VolumeMount{SubPath: "..x/y"}, want: "..x/y"}, // a name that starts with dots is a name
	} {
		got, err := subPathOf(tc.vm, vars)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%+v: got %q, %v; want error %q", tc.vm, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %q, %v; want %q", tc.vm, got, err, tc.want)
		}
	}
}

// helperHost is a host whose uname -m says aarch64 and on which the subPath helper's
// command answers with run.
func helperHost(run func(cmd string) ([]byte, error)) *fake.Host {
	h := fake.NewHost()
	h.Script(fake.Command{Prefix: "uname -m", Stdout: "aarch64\n"}, fake.Command{Run: func(_ context.Context, cmd string, _ []byte) ([]byte, error) {
		return run(cmd)
	}})
	return h
}

// writes counts the files written on the host.
func writes(h *fake.Host) int {
	n := 0
	for _, c := range h.Calls() {
		if c.Method == "WriteFile" {
			n++
		}
	}
	return n
}

// helperFor is a source of the helper that gives the same bytes for every architecture.
func helperFor(string) ([]byte, error) { return []byte("h"), nil }

func TestSubPathHelperInstalled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	helper := []byte("helper for arm64")
	var asked []string
	source := func(arch string) ([]byte, error) { asked = append(asked, arch); return helper, nil }
	h := helperHost(nil)
	s := &subPathHelper{host: h, dir: "/var/lib/satellite/bin", source: source}
	p, err := s.installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := h.File(p); !strings.HasPrefix(p, "/var/lib/satellite/bin/satellite-subpath-") || string(got) != string(helper) || writes(h) != 1 {
		t.Fatalf("installed at %s (%q), %d writes", p, got, writes(h))
	}
	if len(asked) != 1 || asked[0] != "arm64" {
		t.Errorf("asked the source for %v, want [arm64] (uname -m aarch64)", asked)
	}
	if _, err := s.installed(ctx); err != nil || writes(h) != 1 {
		t.Errorf("second use: %v, %d writes; want the checked helper reused", err, writes(h))
	}
	// A new Satellite finds the same helper on the host and copies nothing.
	s2 := &subPathHelper{host: h, dir: s.dir, source: source}
	if p2, err := s2.installed(ctx); err != nil || p2 != p || writes(h) != 1 {
		t.Errorf("new process: %s, %v, %d writes", p2, err, writes(h))
	}
	// A helper altered on the host is replaced.
	h.SetFile(p, []byte("tampered"), 0o700)
	s3 := &subPathHelper{host: h, dir: s.dir, source: source}
	if _, err := s3.installed(ctx); err != nil || writes(h) != 2 {
		t.Errorf("tampered: %v, %d writes", err, writes(h))
	}
	if got, _ := h.File(p); string(got) != string(helper) {
		t.Errorf("tampered: the host holds %q", got)
	}
	for _, f := range h.Paths("/") {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temporary file left: %s", f)
		}
	}
}

func TestBindSubPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := &corev1.Container{Name: "c"}
	binds := []subPathBind{
		{mount: "first", volume: "/pods/p/volumes/a", sub: "x", target: "/pods/p/volume-subpaths/a/c/0"},
		{mount: "second", volume: "/pods/p/volumes/b", sub: "it's", target: "/pods/p/volume-subpaths/b/c/1"},
	}
	for _, tc := range []struct {
		name    string
		stderr  string
		code    int
		wantErr string
	}{
		{name: "bound"},
		{name: "refused", code: 1, stderr: "1 prepare prepare subPath: subpath /pods/p/volumes/b/it's (/) not within volume path /pods/p/volumes/b\n",
			wantErr: `failed to prepare subPath for volumeMount "second" of container "c"`},
		{name: "not made", code: 1, stderr: "0 mkdir create subPath directory: path /etc/x is outside of /pods/p/volumes/a\n",
			wantErr: `failed to create subPath directory for volumeMount "first" of container "c"`},
	} {
		h := helperHost(func(cmd string) ([]byte, error) {
			if tc.code != 0 {
				return nil, &remote.ExitError{Code: tc.code, Stderr: tc.stderr}
			}
			return nil, nil
		})
		m := New(Config{Host: h, PodDir: "/pods", SubPathHelper: helperFor})
		err := m.bindSubPaths(ctx, c, binds)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.wantErr)
		}
		cmds := h.Commands()
		last := cmds[len(cmds)-1]
		if !strings.Contains(last, `' bind '/pods/p/volumes/a' 'x' '/pods/p/volume-subpaths/a/c/0' '/pods/p/volumes/b' 'it'\''s' '/pods/p/volume-subpaths/b/c/1'`) {
			t.Errorf("%s: command %s", tc.name, last)
		}
	}
}

// TestBindSubPathsReinstalls: a helper gone from the host (exit 127) is copied again and the
// bind tried once more.
func TestBindSubPathsReinstalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var h *fake.Host
	runs := 0
	h = helperHost(func(cmd string) ([]byte, error) {
		runs++
		if runs == 1 {
			_ = h.RemoveAll(ctx, "/bin") // removed by someone on the host
			return nil, &remote.ExitError{Code: 127, Stderr: "sh: 1: not found"}
		}
		return nil, nil
	})
	m := New(Config{Host: h, PodDir: "/pods", SubPathHelper: helperFor})
	err := m.bindSubPaths(ctx, &corev1.Container{Name: "c"}, []subPathBind{{mount: "m", volume: "/v", sub: "s", target: "/t"}})
	if err != nil || runs != 2 || writes(h) != 2 {
		t.Errorf("got %v after %d runs and %d writes; want success after a second copy", err, runs, writes(h))
	}
}

func TestSubPathHelperMissing(t *testing.T) {
	t.Parallel()
	h := helperHost(nil)
	m := New(Config{Host: h, PodDir: "/pods", SubPathHelper: func(arch string) ([]byte, error) {
		return nil, errors.New("no helper for " + arch)
	}})
	err := m.bindSubPaths(context.Background(), &corev1.Container{Name: "c"}, []subPathBind{{mount: "m", volume: "/v", sub: "s", target: "/t"}})
	if err == nil || !strings.Contains(err.Error(), `failed to prepare subPath for volumeMount "m" of container "c": no helper for arm64`) {
		t.Errorf("got %v", err)
	}
}
