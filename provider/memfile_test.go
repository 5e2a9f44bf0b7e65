package provider

import (
	"io"
	"os"
	"sync"
)

// memFile is a remote.File over bytes, counting its reads.
type memFile struct {
	data  []byte
	mu    sync.Mutex
	reads int
}

func (m *memFile) ReadAt(b []byte, off int64) (int, error) {
	m.mu.Lock()
	m.reads++
	m.mu.Unlock()
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(b, m.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memFile) Close() error { return nil }
func (m *memFile) Stat() (os.FileInfo, error) {
	return fileInfo{size: int64(len(m.data))}, nil
}

type fileInfo struct {
	os.FileInfo
	size int64
}

func (f fileInfo) Size() int64 { return f.size }
