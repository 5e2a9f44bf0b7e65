package remote

import (
	"context"
	"fmt"
	"io"
	"os"
	pathpkg "path"

	"github.com/pkg/sftp"
)

// Files on the host are read and managed through one SFTP session per SSH connection
// (pkg/sftp; the host's sshd serves it with its sftp-server subsystem). One session carries
// any number of open files, so following many logs never runs into sshd's MaxSessions, and no
// process is left on the host when a reader goes away.

// File is an open file on the host.
type File interface {
	io.ReaderAt
	io.Closer
	Stat() (os.FileInfo, error)
}

func (h *Host) files(ctx context.Context) (*sftp.Client, error) {
	c, err := h.client(ctx)
	if err != nil {
		return nil, err
	}
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	// Concurrent reads keep a long or far away file moving: many requests in flight, not one
	// round trip per 32 KiB.
	fc, err := sftp.NewClient(c.Client, sftp.UseConcurrentReads(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		return nil, fmt.Errorf("ssh %s: sftp session: %w: %w", h.cfg.Addr, ErrUnavailable, err)
	}
	c.sftp = fc
	h.channels.Add(1)
	return fc, nil
}

// Open opens a file on the host for reading.
func (h *Host) Open(ctx context.Context, path string) (File, error) {
	fc, err := h.files(ctx)
	if err != nil {
		return nil, err
	}
	f, err := fc.Open(path)
	if err != nil {
		return nil, fileError("open", path, err)
	}
	return f, nil
}

// Stat describes a file on the host.
func (h *Host) Stat(ctx context.Context, path string) (os.FileInfo, error) {
	fc, err := h.files(ctx)
	if err != nil {
		return nil, err
	}
	fi, err := fc.Stat(path)
	if err != nil {
		return nil, fileError("stat", path, err)
	}
	return fi, nil
}

// Rename renames a file on the host, replacing the target (POSIX rename).
func (h *Host) Rename(ctx context.Context, from, to string) error {
	fc, err := h.files(ctx)
	if err != nil {
		return err
	}
	if err := fc.PosixRename(from, to); err != nil {
		return fileError("rename", from, err)
	}
	return nil
}

// Remove removes a file on the host.
func (h *Host) Remove(ctx context.Context, path string) error {
	fc, err := h.files(ctx)
	if err != nil {
		return err
	}
	if err := fc.Remove(path); err != nil {
		return fileError("remove", path, err)
	}
	return nil
}

// Glob lists the files on the host matching pattern.
func (h *Host) Glob(ctx context.Context, pattern string) ([]string, error) {
	fc, err := h.files(ctx)
	if err != nil {
		return nil, err
	}
	m, err := fc.Glob(pattern)
	if err != nil {
		return nil, fileError("glob", pattern, err)
	}
	return m, nil
}

func fileError(op, path string, err error) error {
	if os.IsNotExist(err) {
		return fmt.Errorf("%s %s on host: %w", op, path, ErrNotFound)
	}
	return fmt.Errorf("%s %s on host: %w", op, path, err)
}

// MkdirAll creates a directory on the host with its parents, each with mode.
func (h *Host) MkdirAll(ctx context.Context, path string, mode os.FileMode) error {
	fc, err := h.files(ctx)
	if err != nil {
		return err
	}
	return mkdirAll(fc, path, mode)
}

// mkdirAll makes the directory first and its parents only when that fails for want of
// them: a new directory under an existing one costs two round trips (mkdir, chmod) where
// sftp.Client.MkdirAll stats every level first.
func mkdirAll(fc *sftp.Client, path string, mode os.FileMode) error {
	err := fc.Mkdir(path)
	if err != nil {
		fi, statErr := fc.Stat(path)
		switch {
		case statErr == nil && fi.IsDir():
			return nil // already there, with whatever mode it was given
		case statErr == nil:
			return fileError("mkdir", path, fmt.Errorf("%w: not a directory", os.ErrExist))
		case !os.IsNotExist(statErr):
			return fileError("mkdir", path, err)
		}
		parent := pathpkg.Dir(path)
		if parent == path || parent == "/" || parent == "." {
			return fileError("mkdir", path, err)
		}
		if err := mkdirAll(fc, parent, mode); err != nil {
			return err
		}
		if err := fc.Mkdir(path); err != nil {
			return fileError("mkdir", path, err)
		}
	}
	if err := fc.Chmod(path, mode); err != nil {
		return fileError("chmod", path, err)
	}
	return nil
}

// RemoveAll removes a path on the host and everything below it; a path that does not exist
// is not an error.
func (h *Host) RemoveAll(ctx context.Context, path string) error {
	fc, err := h.files(ctx)
	if err != nil {
		return err
	}
	if err := fc.RemoveAll(path); err != nil && !os.IsNotExist(err) {
		return fileError("remove", path, err)
	}
	return nil
}

// WriteFile writes data to a new file on the host and gives it mode; an existing file at
// path is truncated.
func (h *Host) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	fc, err := h.files(ctx)
	if err != nil {
		return err
	}
	f, err := fc.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fileError("create", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fileError("chmod", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fileError("write", path, err)
	}
	if err := f.Close(); err != nil {
		return fileError("write", path, err)
	}
	return nil
}
