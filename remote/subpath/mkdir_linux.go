package subpath

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// makeDir creates sub and its missing parents inside base, each with perm, without following
// a symlink in what it creates: the existing part is resolved and checked to lie within base,
// opened component by component, and each new directory is made and entered through its
// parent's fd (mkdirat, openat O_NOFOLLOW).
func makeDir(sub, base string, perm os.FileMode) error {
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return fmt.Errorf("resolve symlinks in %s: %w", base, err)
	}
	full := filepath.Join(realBase, sub)
	if !within(full, realBase) {
		return fmt.Errorf("path %s is outside of %s", full, realBase)
	}
	existing, missing, err := existingPrefix(realBase, full)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil // made meanwhile; the bind step checks where it leads
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return fmt.Errorf("resolve symlinks in %s: %w", existing, err)
	}
	if !within(resolved, realBase) {
		return fmt.Errorf("path %s (%s) is outside of %s", existing, resolved, realBase)
	}
	parent, err := openBeneath(resolved, realBase)
	if err != nil {
		return err
	}
	defer func() { unix.Close(parent) }()
	mode := uint32(perm.Perm())
	if perm&os.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	if perm&os.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	current := resolved
	for _, dir := range missing {
		current = filepath.Join(current, dir)
		if err := unix.Mkdirat(parent, dir, mode); err != nil {
			return fmt.Errorf("mkdir %s: %w", current, err)
		}
		child, err := unix.Openat(parent, dir, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", current, err)
		}
		unix.Close(parent)
		parent = child
		// mkdirat's mode went through the umask; the container needs the volume's own.
		if err := unix.Fchmod(parent, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", current, err)
		}
	}
	return nil
}

// existingPrefix walks full from base, following symlinks as a lookup would, and returns the
// longest existing prefix and the names below it that do not exist.
func existingPrefix(base, full string) (string, []string, error) {
	rel, err := filepath.Rel(base, full)
	if err != nil {
		return "", nil, err
	}
	if rel == "." {
		return full, nil, nil
	}
	dirs := strings.Split(rel, "/")
	fd, err := unix.Open(base, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", base, err)
	}
	defer func() { unix.Close(fd) }()
	current := base
	for i, dir := range dirs {
		// O_PATH: a directory replaced by a FIFO does not block the walk.
		child, err := unix.Openat(fd, dir, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			return current, dirs[i:], nil
		}
		if err != nil {
			return "", nil, fmt.Errorf("open %s: %w", filepath.Join(current, dir), err)
		}
		unix.Close(fd)
		fd = child
		current = filepath.Join(current, dir)
	}
	return full, nil, nil
}

// isMountPoint says whether path is the mount point of a mount in this mount namespace. A
// bind mount from the same filesystem keeps the device number, so /proc/self/mountinfo is
// read rather than st_dev compared.
func isMountPoint(path string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	path = filepath.Clean(path)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes of space, tab, newline and backslash
// in a mountinfo path (show_mountinfo, mangle()).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
