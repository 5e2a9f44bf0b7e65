package subpath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The two ways a subPath fails, told apart because the kubelet words them differently to the
// user ("failed to create subPath directory ...", "failed to prepare subPath ...").
var (
	ErrMakeDir = errors.New("create subPath directory")
	ErrPrepare = errors.New("prepare subPath")
)

// Mount is one volumeMount's subPath: SubPath inside Volume, to be shown at Target.
type Mount struct {
	Volume  string // the volume's directory on the host
	SubPath string // relative, already checked for ".." and a leading "/"
	Target  string // where the bind mount goes, in a directory only root can change
}

// Bind creates the subPath as a directory when it does not exist (with the volume's mode, as
// the kubelet does), then bind-mounts it at m.Target. A target already mounted from the same
// file is kept; one mounted from another is replaced. Errors wrap ErrMakeDir or ErrPrepare.
func Bind(m Mount) error {
	full := filepath.Join(m.Volume, m.SubPath)
	if !within(full, m.Volume) {
		return fmt.Errorf("%w: %s is outside of %s", ErrPrepare, full, m.Volume)
	}
	if _, err := os.Stat(full); os.IsNotExist(err) {
		fi, err := os.Stat(m.Volume)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMakeDir, err)
		}
		if err := makeDir(m.SubPath, m.Volume, fi.Mode()); err != nil {
			return fmt.Errorf("%w: %w", ErrMakeDir, err)
		}
	}
	if err := bind(m, full); err != nil {
		return fmt.Errorf("%w: %w", ErrPrepare, err)
	}
	return nil
}

// bind opens the subPath's resolved path without following any symlink and mounts the
// opened file at the target through /proc/self/fd, so what is mounted is what was checked.
func bind(m Mount, full string) error {
	vol, err := filepath.EvalSymlinks(m.Volume)
	if err != nil {
		return fmt.Errorf("resolve symlinks in %s: %w", m.Volume, err)
	}
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		return fmt.Errorf("resolve symlinks in %s: %w", full, err)
	}
	if !within(resolved, vol) {
		return fmt.Errorf("subpath %s (%s) not within volume path %s", full, resolved, vol)
	}
	fd, err := openBeneath(resolved, vol)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat %s: %w", resolved, err)
	}
	done, err := prepareTarget(m.Target, &st)
	if err != nil || done {
		return err
	}
	src := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(src, m.Target, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(m.Target)
		return fmt.Errorf("bind mount %s at %s: %w", resolved, m.Target, err)
	}
	return nil
}

// prepareTarget makes the mount point, a directory or an empty file like what is mounted
// there. It reports true when the target is already a mount of that very file.
func prepareTarget(target string, src *unix.Stat_t) (bool, error) {
	mounted, err := isMountPoint(target)
	if err != nil {
		return false, err
	}
	if mounted {
		var t unix.Stat_t
		if err := unix.Lstat(target, &t); err == nil && t.Dev == src.Dev && t.Ino == src.Ino {
			return true, nil
		}
		if err := unix.Unmount(target, 0); err != nil {
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
				return false, fmt.Errorf("unmount %s: %w", target, err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return false, err
	}
	if src.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.Mkdir(target, 0o750); err != nil && !os.IsExist(err) {
			return false, err
		}
		return false, nil
	}
	// A file serves as the mount point of anything that is not a directory.
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return false, err
	}
	return false, f.Close()
}

// openBeneath opens path, which lies within base and has no symlink left in it, one
// component at a time, refusing any component that is a symlink: one swapped in since the
// path was resolved fails the open instead of being followed. The caller closes the fd.
func openBeneath(path, base string) (int, error) {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return -1, err
	}
	parent, err := unix.Open(base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", base, err)
	}
	if rel == "." {
		return parent, nil
	}
	current := base
	for _, seg := range strings.Split(rel, "/") {
		current = filepath.Join(current, seg)
		if !within(current, base) {
			unix.Close(parent)
			return -1, fmt.Errorf("path %s is outside of %s", current, base)
		}
		child, err := unix.Openat(parent, seg, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(parent)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", current, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(child, &st); err != nil {
			unix.Close(child)
			return -1, fmt.Errorf("fstat %s: %w", current, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(child)
			return -1, fmt.Errorf("unexpected symlink %s", current)
		}
		parent = child
	}
	return parent, nil
}

// within says whether path is base or below it, by its clean text.
func within(path, base string) bool {
	path, base = filepath.Clean(path), filepath.Clean(base)
	return path == base || strings.HasPrefix(path, strings.TrimSuffix(base, "/")+"/")
}
