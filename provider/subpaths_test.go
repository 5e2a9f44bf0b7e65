package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

func TestSubPathOf(t *testing.T) {
	t.Parallel()
	envs := []*runtimeapi.KeyValue{{Key: "POD", Value: "web-0"}, {Key: "EMPTY", Value: ""}}
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
		got, err := subPathOf(tc.vm, envVars(envs))
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

// helperHost is a host with files and the subPath helper's command.
type helperHost struct {
	Host   // the methods these tests do not use
	mu     sync.Mutex
	files  map[string][]byte
	writes int
	run    func(cmd string) ([]byte, error) // the helper's command
	cmds   []string
}

func (h *helperHost) Output(_ context.Context, cmd string) ([]byte, error) {
	h.mu.Lock()
	h.cmds = append(h.cmds, cmd)
	h.mu.Unlock()
	if cmd == "uname -m" {
		return []byte("aarch64\n"), nil
	}
	return h.run(cmd)
}

func (h *helperHost) Open(_ context.Context, p string) (remote.File, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.files[p]
	if !ok {
		return nil, fmt.Errorf("open %s on host: %w", p, remote.ErrNotFound)
	}
	return &modeFile{memFile: memFile{data: b}}, nil
}

func (h *helperHost) MkdirAll(context.Context, string, os.FileMode) error { return nil }

func (h *helperHost) WriteFile(_ context.Context, p string, data []byte, _ os.FileMode) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[p] = append([]byte(nil), data...)
	h.writes++
	return nil
}

func (h *helperHost) Rename(_ context.Context, from, to string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[to] = h.files[from]
	delete(h.files, from)
	return nil
}

func (h *helperHost) Remove(_ context.Context, p string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.files, p)
	return nil
}

// modeFile is a memFile whose mode is executable.
type modeFile struct{ memFile }

func (m *modeFile) Stat() (os.FileInfo, error) { return modeInfo{size: int64(len(m.data))}, nil }

type modeInfo struct {
	os.FileInfo
	size int64
}

func (f modeInfo) Size() int64       { return f.size }
func (f modeInfo) Mode() os.FileMode { return 0o700 }

func TestSubPathHelperInstalled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	helper := []byte("helper for arm64")
	var asked []string
	source := func(arch string) ([]byte, error) { asked = append(asked, arch); return helper, nil }
	h := &helperHost{files: map[string][]byte{}}
	s := &subPathHelper{host: h, dir: "/var/lib/satellite/bin", source: source}
	p, err := s.installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, "/var/lib/satellite/bin/satellite-subpath-") || string(h.files[p]) != string(helper) || h.writes != 1 {
		t.Fatalf("installed at %s (%q), %d writes", p, h.files[p], h.writes)
	}
	if len(asked) != 1 || asked[0] != "arm64" {
		t.Errorf("asked the source for %v, want [arm64] (uname -m aarch64)", asked)
	}
	if _, err := s.installed(ctx); err != nil || h.writes != 1 {
		t.Errorf("second use: %v, %d writes; want the checked helper reused", err, h.writes)
	}
	// A new Satellite finds the same helper on the host and copies nothing.
	s2 := &subPathHelper{host: h, dir: s.dir, source: source}
	if p2, err := s2.installed(ctx); err != nil || p2 != p || h.writes != 1 {
		t.Errorf("new process: %s, %v, %d writes", p2, err, h.writes)
	}
	// A helper altered on the host is replaced.
	h.files[p] = []byte("tampered")
	s3 := &subPathHelper{host: h, dir: s.dir, source: source}
	if _, err := s3.installed(ctx); err != nil || string(h.files[p]) != string(helper) || h.writes != 2 {
		t.Errorf("tampered: %v, %q, %d writes", err, h.files[p], h.writes)
	}
	for f := range h.files {
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
		h := &helperHost{files: map[string][]byte{}}
		h.run = func(cmd string) ([]byte, error) {
			if tc.code != 0 {
				return nil, &remote.ExitError{Code: tc.code, Stderr: tc.stderr}
			}
			return nil, nil
		}
		p := &Provider{host: h, subpaths: &subPathHelper{host: h, dir: "/bin", source: func(string) ([]byte, error) { return []byte("h"), nil }}}
		err := p.bindSubPaths(ctx, c, binds)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.wantErr)
		}
		last := h.cmds[len(h.cmds)-1]
		if !strings.Contains(last, `' bind '/pods/p/volumes/a' 'x' '/pods/p/volume-subpaths/a/c/0' '/pods/p/volumes/b' 'it'\''s' '/pods/p/volume-subpaths/b/c/1'`) {
			t.Errorf("%s: command %s", tc.name, last)
		}
	}
}

// TestBindSubPathsReinstalls: a helper gone from the host (exit 127) is copied again and the
// bind tried once more.
func TestBindSubPathsReinstalls(t *testing.T) {
	t.Parallel()
	h := &helperHost{files: map[string][]byte{}}
	runs := 0
	h.run = func(cmd string) ([]byte, error) {
		runs++
		if runs == 1 {
			h.mu.Lock()
			h.files = map[string][]byte{} // removed by someone on the host
			h.mu.Unlock()
			return nil, &remote.ExitError{Code: 127, Stderr: "sh: 1: not found"}
		}
		return nil, nil
	}
	p := &Provider{host: h, subpaths: &subPathHelper{host: h, dir: "/bin", source: func(string) ([]byte, error) { return []byte("h"), nil }}}
	err := p.bindSubPaths(context.Background(), &corev1.Container{Name: "c"}, []subPathBind{{mount: "m", volume: "/v", sub: "s", target: "/t"}})
	if err != nil || runs != 2 || h.writes != 2 {
		t.Errorf("got %v after %d runs and %d writes; want success after a second copy", err, runs, h.writes)
	}
}

func TestSubPathHelperMissing(t *testing.T) {
	t.Parallel()
	h := &helperHost{files: map[string][]byte{}}
	p := &Provider{host: h, subpaths: &subPathHelper{host: h, dir: "/bin", source: func(arch string) ([]byte, error) {
		return nil, errors.New("no helper for " + arch)
	}}}
	err := p.bindSubPaths(context.Background(), &corev1.Container{Name: "c"}, []subPathBind{{mount: "m", volume: "/v", sub: "s", target: "/t"}})
	if err == nil || !strings.Contains(err.Error(), `failed to prepare subPath for volumeMount "m" of container "c": no helper for arm64`) {
		t.Errorf("got %v", err)
	}
}
