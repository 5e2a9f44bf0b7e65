package subpath

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests bind-mount, so they need root (CI runs as root); they unmount what they mount.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the subPath helper bind-mounts (CI runs as root)")
	}
}

// fixture is a volume with a marker file inside and a "secret" outside, beside a pod's
// volume-subpaths directory.
func fixture(t *testing.T) (vol, outside, targets string) {
	root := t.TempDir()
	vol = filepath.Join(root, "volumes", "d")
	outside = filepath.Join(root, "outside")
	targets = filepath.Join(root, "volume-subpaths", "d", "c")
	for _, d := range []string{vol, outside, filepath.Join(vol, "real")} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(vol, "real", "inside"), "inside")
	write(t, filepath.Join(vol, "file"), "a file")
	write(t, filepath.Join(outside, "secret"), "outside")
	return vol, outside, targets
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func unmount(t *testing.T, target string) {
	t.Helper()
	if m, _ := isMountPoint(target); m {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Fatalf("unmount %s: %v", target, err)
		}
	}
}

func TestBind(t *testing.T) {
	needRoot(t)
	vol, outside, targets := fixture(t)
	for _, l := range [][2]string{
		{"/", "to-root"},
		{"..", "to-parent"},
		{outside, "to-outside"},
		{filepath.Join(vol, "real"), "abs-inside"},
		{"real", "rel-inside"},
		{outside, "a"},
		{"../../..", "deep-parent"},
	} {
		if err := os.Symlink(l[0], filepath.Join(vol, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		sub  string
		want error  // nil: mounted
		file string // a file the mount must show, with its content
	}{
		{sub: "real", file: "inside"},
		{sub: "file", file: ""},
		{sub: "abs-inside", file: "inside"}, // a symlink that stays inside is followed, as by the kubelet
		{sub: "rel-inside", file: "inside"},
		{sub: "new/dir"}, // made, with the volume's mode
		{sub: "to-root", want: ErrPrepare},
		{sub: "to-parent", want: ErrPrepare},
		{sub: "deep-parent", want: ErrPrepare},
		{sub: "to-outside", want: ErrPrepare},
		{sub: "a/secret", want: ErrPrepare}, // a symlink in a middle component
		{sub: "a/missing", want: ErrMakeDir},
		{sub: "to-root/etc", want: ErrPrepare},
	}
	for i, c := range cases {
		target := filepath.Join(targets, "idx", c.sub)
		err := Bind(Mount{Volume: vol, SubPath: c.sub, Target: target})
		if c.want != nil {
			if !errors.Is(err, c.want) {
				t.Errorf("%d %s: got %v, want %v", i, c.sub, err, c.want)
			}
			if m, _ := isMountPoint(target); m {
				t.Errorf("%s: refused, yet mounted at %s", c.sub, target)
				unmount(t, target)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.sub, err)
			continue
		}
		if m, _ := isMountPoint(target); !m {
			t.Errorf("%s: not mounted at %s", c.sub, target)
		}
		if c.file == "inside" {
			if b, err := os.ReadFile(filepath.Join(target, "inside")); err != nil || string(b) != "inside" {
				t.Errorf("%s: mount shows %q, %v", c.sub, b, err)
			}
		}
		if c.sub == "file" {
			if b, err := os.ReadFile(target); err != nil || string(b) != "a file" {
				t.Errorf("file: mount shows %q, %v", b, err)
			}
		}
		if c.sub == "new/dir" {
			fi, err := os.Stat(filepath.Join(vol, "new", "dir"))
			if err != nil || fi.Mode().Perm() != 0o777 {
				t.Errorf("new/dir: %v, %v; want a 0777 directory", fi, err)
			}
		}
		// A second bind of the same subPath keeps the mount (a container restart).
		if err := Bind(Mount{Volume: vol, SubPath: c.sub, Target: target}); err != nil {
			t.Errorf("%s: second bind: %v", c.sub, err)
		}
		unmount(t, target)
	}
}

// TestBindAfterSwap: a subPath mounted once, then replaced by a symlink to "/" before the
// container restarts, is refused on the restart and the old mount is not reused.
func TestBindAfterSwap(t *testing.T) {
	needRoot(t)
	vol, _, targets := fixture(t)
	target := filepath.Join(targets, "0")
	if err := Bind(Mount{Volume: vol, SubPath: "real", Target: target}); err != nil {
		t.Fatal(err)
	}
	defer unmount(t, target)
	if err := os.RemoveAll(filepath.Join(vol, "real")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(vol, "real")); err != nil {
		t.Fatal(err)
	}
	if err := Bind(Mount{Volume: vol, SubPath: "real", Target: target}); !errors.Is(err, ErrPrepare) {
		t.Fatalf("after the swap: got %v, want ErrPrepare", err)
	}
	if _, err := os.Stat(filepath.Join(target, "etc", "passwd")); err == nil {
		t.Fatal("the target shows the host's /etc")
	}
}

// TestBindRace binds a subPath that another goroutine swaps between a directory and a
// symlink to "/" as fast as it can: every bind either fails or shows the directory, never
// anything outside the volume.
func TestBindRace(t *testing.T) {
	needRoot(t)
	vol, outside, targets := fixture(t)
	x := filepath.Join(vol, "x")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmpDir, tmpLink := filepath.Join(vol, "x.dir"), filepath.Join(vol, "x.link")
		for !stop.Load() {
			_ = os.Mkdir(tmpDir, 0o777)
			_ = os.WriteFile(filepath.Join(tmpDir, "inside"), []byte("inside"), 0o644)
			_ = os.RemoveAll(x)
			_ = os.Rename(tmpDir, x)
			_ = os.Symlink(outside, tmpLink)
			_ = os.RemoveAll(x)
			_ = os.Rename(tmpLink, x)
		}
	}()
	var mounted, refused int
	for i := 0; i < 300; i++ {
		target := filepath.Join(targets, "race")
		err := Bind(Mount{Volume: vol, SubPath: "x", Target: target})
		if err != nil {
			refused++
			continue
		}
		mounted++
		if _, err := os.Stat(filepath.Join(target, "secret")); err == nil {
			stop.Store(true)
			wg.Wait()
			unmount(t, target)
			t.Fatalf("bind %d mounted the directory outside the volume", i)
		}
		unmount(t, target)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("300 binds under a swapping symlink: %d mounted the directory inside, %d refused, none outside", mounted, refused)
	if refused == 0 {
		t.Error("no bind met the symlink: the race was not exercised")
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/plain`:    "/plain",
		`/t\011x`:   "/t\tx",
		`/b\134s`:   `/b\s`,
		`/short\04`: `/short\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
