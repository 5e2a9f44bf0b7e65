package volumes

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The atomic writer's tar stream and script run here as they run on the host (without the
// tmpfs mount): a first generation, then a second in which a file and a directory are gone.
func TestAtomicScript(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	if out, err := exec.Command("tar", "--version").Output(); err != nil || !strings.Contains(string(out), "GNU tar") {
		t.Skip("no GNU tar (--no-overwrite-dir), as the hosts have:", err)
	}
	dir := filepath.Join(t.TempDir(), "volumes", "config")
	write := func(gen string, files map[string]volumeFile) {
		t.Helper()
		paths, err := sortedPaths(files)
		if err != nil {
			t.Fatal(err)
		}
		content, err := generationTar(gen, paths, files, nil)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sh, "-c", atomicScript(dir, gen, topLevel(paths), false))
		cmd.Stdin = content
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script: %v: %s", err, out)
		}
	}
	entries := func() []string {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, de := range des {
			out = append(out, de.Name())
		}
		sort.Strings(out)
		return out
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}

	write("..sat_1", map[string]volumeFile{"a": {data: []byte("one"), mode: 0o644}, "conf/b.yaml": {data: []byte("two"), mode: 0o600}, "conf/sub/c": {data: []byte("three"), mode: 0o644}})
	if got, want := strings.Join(entries(), " "), "..data ..sat_1 a conf"; got != want {
		t.Errorf("first generation: entries %q, want %q", got, want)
	}
	if read("a") != "one" || read("conf/b.yaml") != "two" || read("conf/sub/c") != "three" {
		t.Errorf("first generation: a=%q conf/b.yaml=%q conf/sub/c=%q", read("a"), read("conf/b.yaml"), read("conf/sub/c"))
	}
	if target, err := os.Readlink(filepath.Join(dir, "conf")); err != nil || target != "..data/conf" {
		t.Errorf("conf links to %q (%v), want ..data/conf", target, err)
	}

	write("..sat_2", map[string]volumeFile{"a": {data: []byte("one, again"), mode: 0o644}})
	if got, want := strings.Join(entries(), " "), "..data ..sat_2 a"; got != want {
		t.Errorf("second generation: entries %q, want %q (older generation and entries gone)", got, want)
	}
	if target, err := os.Readlink(filepath.Join(dir, "..data")); err != nil || target != "..sat_2" || read("a") != "one, again" {
		t.Errorf("second generation: ..data -> %q (%v), a=%q", target, err, read("a"))
	}
}

func TestTopLevel(t *testing.T) {
	t.Parallel()
	got := strings.Join(topLevel([]string{"a", "a.b", "a/x", "b/c/d", "b/e"}), " ")
	if want := "a a.b b"; got != want {
		t.Errorf("topLevel = %q, want %q", got, want)
	}
}

func TestValidPath(t *testing.T) {
	t.Parallel()
	for p, ok := range map[string]bool{
		"a": true, "a/b": true, "..a": false, "a/../b": false, "/a": false, "": false, "a//b": false, "a/": false, "a..b/c": true,
	} {
		if err := validPath(p); (err == nil) != ok {
			t.Errorf("validPath(%q) = %v, want ok %t", p, err, ok)
		}
	}
}

// The content hash changes with any path, mode, byte or the group, and only with them.
func TestContentHash(t *testing.T) {
	t.Parallel()
	gid := int64(2000)
	files := map[string]volumeFile{"a": {data: []byte("x"), mode: 0o644}}
	base := contentHash([]string{"a"}, files, nil)
	if contentHash([]string{"a"}, map[string]volumeFile{"a": {data: []byte("x"), mode: 0o644}}, nil) != base {
		t.Error("the same content hashes differently")
	}
	for name, sum := range map[string]string{
		"data":  contentHash([]string{"a"}, map[string]volumeFile{"a": {data: []byte("y"), mode: 0o644}}, nil),
		"mode":  contentHash([]string{"a"}, map[string]volumeFile{"a": {data: []byte("x"), mode: 0o600}}, nil),
		"path":  contentHash([]string{"b"}, map[string]volumeFile{"b": {data: []byte("x"), mode: 0o644}}, nil),
		"group": contentHash([]string{"a"}, files, &gid),
	} {
		if sum == base {
			t.Errorf("a change of %s keeps the hash", name)
		}
	}
}
