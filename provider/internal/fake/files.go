package fake

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/satellite-vk/satellite/remote"
)

// file is one file or directory of the in-memory host.
type file struct {
	data    []byte
	mode    os.FileMode
	dir     bool
	modTime time.Time
}

// fileInfo describes a file as remote.Host's Stat does.
type fileInfo struct {
	name string
	f    file
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return int64(len(i.f.data)) }
func (i fileInfo) ModTime() time.Time { return i.f.modTime }
func (i fileInfo) IsDir() bool        { return i.f.dir }
func (i fileInfo) Sys() any           { return nil }
func (i fileInfo) Mode() os.FileMode {
	if i.f.dir {
		return i.f.mode | fs.ModeDir
	}
	return i.f.mode
}

// openFile is a snapshot of a file's content when it was opened; its reads are counted.
type openFile struct {
	*bytes.Reader
	info fileInfo
	read func()
}

func (f openFile) ReadAt(b []byte, off int64) (int, error) {
	f.read()
	return f.Reader.ReadAt(b, off)
}

func (f openFile) Stat() (os.FileInfo, error) { return f.info, nil }
func (f openFile) Close() error               { return nil }

// fileError wraps a missing file's error in remote.ErrNotFound, as remote.Host does.
func fileError(op, p string, err error) error {
	return fmt.Errorf("%s %s on host: %w", op, p, err)
}

func notFound(op, p string) error { return fileError(op, p, remote.ErrNotFound) }

// SetFile puts a file on the host, with any missing parent directories, for a test to read.
func (h *Host) SetFile(p string, data []byte, mode os.FileMode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p = path.Clean(p)
	if h.mkdirAll(path.Dir(p), 0o755) != nil {
		return // a relative path or one below a file: nothing a test can read back
	}
	h.files[p] = &file{data: append([]byte(nil), data...), mode: mode, modTime: time.Now()}
}

// File returns a file's content and whether it is there (a directory is not).
func (h *Host) File(p string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.files[path.Clean(p)]
	if f == nil || f.dir {
		return nil, false
	}
	return append([]byte(nil), f.data...), true
}

// Paths returns every file and directory under dir (dir included when it exists), sorted.
func (h *Host) Paths(dir string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.below(path.Clean(dir))
}

func (h *Host) below(dir string) []string {
	var out []string
	for p := range h.files {
		if p == dir || dir == "/" || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Fail makes Open and Stat of p answer err as it is (a file that cannot be read); nil undoes it.
func (h *Host) Fail(p string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail == nil {
		h.fail = map[string]error{}
	}
	h.fail[path.Clean(p)] = err
}

// Reads returns how many reads (ReadAt calls) were made of the files opened at p.
func (h *Host) Reads(p string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads[path.Clean(p)]
}

// Open opens a file for reading: a snapshot of its content now.
func (h *Host) Open(_ context.Context, p string) (remote.File, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("Open", p)
	if err := h.fail[path.Clean(p)]; err != nil {
		return nil, err
	}
	f := h.files[path.Clean(p)]
	if f == nil {
		return nil, notFound("open", p)
	}
	if f.dir {
		return nil, fileError("open", p, fmt.Errorf("is a directory"))
	}
	info := fileInfo{name: path.Base(p), f: *f}
	p = path.Clean(p)
	read := func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.reads == nil {
			h.reads = map[string]int{}
		}
		h.reads[p]++
	}
	return openFile{Reader: bytes.NewReader(f.data), info: info, read: read}, nil
}

// Stat describes a file or directory.
func (h *Host) Stat(_ context.Context, p string) (os.FileInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("Stat", p)
	if err := h.fail[path.Clean(p)]; err != nil {
		return nil, err
	}
	f := h.files[path.Clean(p)]
	if f == nil {
		return nil, notFound("stat", p)
	}
	return fileInfo{name: path.Base(p), f: *f}, nil
}

// Rename moves a file or directory (with what is below it), replacing a file at the target.
func (h *Host) Rename(_ context.Context, from, to string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("Rename", from+" "+to)
	from, to = path.Clean(from), path.Clean(to)
	if h.files[from] == nil {
		return notFound("rename", from)
	}
	if d := h.files[path.Dir(to)]; d == nil || !d.dir {
		return notFound("rename", to)
	}
	if t := h.files[to]; t != nil && t.dir && len(h.below(to)) > 1 {
		return fileError("rename", to, fmt.Errorf("directory not empty"))
	}
	for _, p := range h.below(from) {
		h.files[to+strings.TrimPrefix(p, from)] = h.files[p]
		delete(h.files, p)
	}
	return nil
}

// Remove removes a file or an empty directory.
func (h *Host) Remove(_ context.Context, p string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("Remove", p)
	p = path.Clean(p)
	f := h.files[p]
	switch {
	case f == nil:
		return notFound("remove", p)
	case f.dir && len(h.below(p)) > 1:
		return fileError("remove", p, fmt.Errorf("directory not empty"))
	}
	delete(h.files, p)
	return nil
}

// WriteFile writes a file in an existing directory, truncating one that is there.
func (h *Host) WriteFile(_ context.Context, p string, data []byte, mode os.FileMode) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("WriteFile", p)
	p = path.Clean(p)
	if d := h.files[path.Dir(p)]; d == nil || !d.dir {
		return notFound("create", p)
	}
	if f := h.files[p]; f != nil && f.dir {
		return fileError("create", p, fmt.Errorf("is a directory"))
	}
	h.files[p] = &file{data: append([]byte(nil), data...), mode: mode, modTime: time.Now()}
	return nil
}

// MkdirAll makes a directory and its missing parents, each with mode.
func (h *Host) MkdirAll(_ context.Context, p string, mode os.FileMode) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("MkdirAll", p)
	return h.mkdirAll(path.Clean(p), mode)
}

func (h *Host) mkdirAll(p string, mode os.FileMode) error {
	if !path.IsAbs(p) {
		return fileError("mkdir", p, fmt.Errorf("not an absolute path"))
	}
	if f := h.files[p]; f != nil {
		if !f.dir {
			return fileError("mkdir", p, fmt.Errorf("%w: not a directory", os.ErrExist))
		}
		return nil
	}
	if err := h.mkdirAll(path.Dir(p), mode); err != nil {
		return err
	}
	h.files[p] = &file{dir: true, mode: mode, modTime: time.Now()}
	return nil
}

// RemoveAll removes a path and everything below it; a missing path is no error.
func (h *Host) RemoveAll(_ context.Context, p string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("RemoveAll", p)
	p = path.Clean(p)
	if p == "/" {
		return fileError("remove", p, fmt.Errorf("refusing to remove the root"))
	}
	for _, q := range h.below(p) {
		delete(h.files, q)
	}
	return nil
}

// Glob lists the paths that match pattern (path.Match's syntax, as sftp's Glob), sorted.
func (h *Host) Glob(_ context.Context, pattern string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("Glob", pattern)
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fileError("glob", pattern, err)
	}
	var out []string
	for p := range h.files {
		if ok, _ := path.Match(pattern, p); ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}
