package volumes

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/remote"
)

// Content is written the way the kubelet's atomic writer (pkg/volume/util/atomic_writer.go)
// writes it: a timestamped directory, a ..data symlink swapped to it with rename(2), and one
// symlink per top-level entry into ..data, so a container never sees a half-written update.

// atomicWrite is one volume's content to write into its directory.
type atomicWrite struct {
	volume string
	dir    string
	files  map[string]volumeFile
	tmpfs  bool   // the directory is a tmpfs mount: the content never reaches the host's disk
	gid    *int64 // the pod's fsGroup, which owns the files and may read them
}

// writeAtomic writes the volume's files the atomic writer's way, only when they changed. The
// content travels as a tar stream on the command's standard input: never in a command line.
func (m *Manager) writeAtomic(ctx context.Context, st *podState, pod *corev1.Pod, w atomicWrite) error {
	paths, err := sortedPaths(w.files)
	if err != nil {
		return err
	}
	sum := contentHash(paths, w.files, w.gid)
	if st.hashes[w.volume] == sum {
		return nil
	}
	gen := "..sat_" + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	content, err := generationTar(gen, paths, w.files, w.gid)
	if err != nil {
		return err
	}
	if err := m.command(ctx, st, pod, atomicScript(w.dir, gen, topLevel(paths), w.tmpfs), content); err != nil {
		return fmt.Errorf("write the volume on the host: %w", err)
	}
	st.hashes[w.volume] = sum
	return nil
}

// sortedPaths are the files' paths, sorted, each checked by validPath.
func sortedPaths(files map[string]volumeFile) ([]string, error) {
	paths := make([]string, 0, len(files))
	for fp := range files {
		if err := validPath(fp); err != nil {
			return nil, err
		}
		paths = append(paths, fp)
	}
	sort.Strings(paths)
	return paths, nil
}

// validPath refuses item paths that would leave the volume, as the API server does.
func validPath(fp string) error {
	if fp == "" || strings.HasPrefix(fp, "/") || strings.HasPrefix(fp, "..") {
		return fmt.Errorf("invalid path %q", fp)
	}
	for _, part := range strings.Split(fp, "/") {
		if part == ".." || part == "" {
			return fmt.Errorf("invalid path %q", fp)
		}
	}
	return nil
}

// contentHash identifies what a volume's directory holds: its files' paths, modes and data,
// and the group that owns them.
func contentHash(paths []string, files map[string]volumeFile, gid *int64) string {
	h := sha256.New()
	for _, fp := range paths {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", fp, files[fp].mode, len(files[fp].data))
		h.Write(files[fp].data)
	}
	if gid != nil {
		fmt.Fprintf(h, "gid=%d", *gid)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// topLevel are the first elements of the paths, each once, sorted: the entries of the
// volume's directory.
func topLevel(paths []string) []string {
	seen := map[string]bool{}
	var top []string
	for _, fp := range paths {
		first, _, _ := strings.Cut(fp, "/")
		if !seen[first] {
			seen[first] = true
			top = append(top, first)
		}
	}
	sort.Strings(top)
	return top
}

// generationTar is the tar stream the atomic script unpacks in the volume's directory: the
// files in the generation's directory gen (with their parent directories), a ..data_tmp
// symlink to it, and one symlink per top-level entry into ..data.
func generationTar(gen string, paths []string, files map[string]volumeFile, gid *int64) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	t := tarball{tw: tar.NewWriter(&buf), mtime: time.Now(), dirs: map[string]bool{}}
	if gid != nil {
		t.group = int(*gid)
	}
	for _, fp := range paths {
		f := files[fp]
		mode := f.mode
		if gid != nil {
			mode |= 0o040 // readable by the pod's fsGroup
		}
		if err := t.file(gen+"/"+fp, f.data, mode); err != nil {
			return nil, err
		}
	}
	t.dir(gen)
	t.symlink("..data_tmp", gen)
	for _, top := range topLevel(paths) {
		t.symlink(top, "..data/"+top)
	}
	if err := t.tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// tarball writes one generation's entries, all with the same time and group.
type tarball struct {
	tw    *tar.Writer
	mtime time.Time
	group int
	dirs  map[string]bool // the directories written so far
}

// file writes a regular file, after any of its parent directories not written yet.
func (t *tarball) file(name string, data []byte, mode int64) error {
	parts := strings.Split(name, "/")
	for i := 2; i < len(parts); i++ { // parts[0] is the generation, written last
		if d := strings.Join(parts[:i], "/"); !t.dirs[d] {
			t.dirs[d] = true
			t.dir(d)
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), Gid: t.group, ModTime: t.mtime}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := t.tw.Write(data)
	return err
}

// dir and symlink write headers that cannot fail once the files have been written: an error
// would only repeat, and Close reports it.
func (t *tarball) dir(name string) {
	_ = t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Gid: t.group, ModTime: t.mtime})
}

func (t *tarball) symlink(name, target string) {
	_ = t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, ModTime: t.mtime})
}

// atomicScript unpacks a generation's tar stream in dir (a tmpfs mount when asked), swaps
// ..data to it, and drops older generations and entries no longer in the volume.
func atomicScript(dir, gen string, keep []string, tmpfs bool) string {
	q := remote.Quote(dir)
	var script strings.Builder
	script.WriteString("set -e; umask 077; mkdir -p " + q + "; ")
	if tmpfs {
		script.WriteString("mountpoint -q " + q + " || mount -t tmpfs -o mode=0755 tmpfs " + q + "; ")
	}
	script.WriteString("cd " + q + " && tar -x --no-overwrite-dir -f - && mv -T ..data_tmp ..data; ")
	script.WriteString("for f in ..sat_*; do [ \"$f\" = " + remote.Quote(gen) + " ] || rm -rf -- \"$f\"; done; ")
	script.WriteString("for f in * .[!.]*; do [ -e \"$f\" ] || [ -L \"$f\" ] || continue; case \"$f\" in ")
	for _, k := range keep {
		script.WriteString(remote.Quote(k) + ") ;; ")
	}
	script.WriteString("*) rm -rf -- \"$f\";; esac; done")
	return script.String()
}
