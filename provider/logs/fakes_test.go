package logs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"sync"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
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

// memFiles is a host's files in memory; fail makes the named files unreadable.
type memFiles struct {
	mu    sync.Mutex
	files map[string]string
	fail  map[string]error
}

func (h *memFiles) Open(_ context.Context, p string) (remote.File, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.fail[p]; err != nil {
		return nil, err
	}
	data, ok := h.files[p]
	if !ok {
		return nil, fmt.Errorf("open %s on host: %w", p, remote.ErrNotFound)
	}
	return &memFile{data: []byte(data)}, nil
}

func (h *memFiles) Stat(ctx context.Context, p string) (os.FileInfo, error) {
	f, err := h.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return f.Stat()
}

func (h *memFiles) Rename(_ context.Context, from, to string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	data, ok := h.files[from]
	if !ok {
		return fmt.Errorf("rename %s on host: %w", from, remote.ErrNotFound)
	}
	delete(h.files, from)
	h.files[to] = data
	return nil
}

func (h *memFiles) Remove(_ context.Context, p string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.files[p]; !ok {
		return fmt.Errorf("remove %s on host: %w", p, remote.ErrNotFound)
	}
	delete(h.files, p)
	return nil
}

func (h *memFiles) Glob(_ context.Context, pattern string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for p := range h.files {
		if ok, _ := path.Match(pattern, p); ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// fakeRuntime is a runtime with the given containers, all running until exited is set.
type fakeRuntime struct {
	mu         sync.Mutex
	containers []*runtimeapi.Container
	reopened   []string
	reopenErr  error
}

func (r *fakeRuntime) ListContainers(_ context.Context, in *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range r.containers {
		if matches(c.Labels, in.GetFilter().GetLabelSelector()) {
			out = append(out, c)
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func matches(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (r *fakeRuntime) ContainerStatus(_ context.Context, in *runtimeapi.ContainerStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error) {
	return nil, fmt.Errorf("container %s: %w", in.ContainerId, remote.ErrNotFound)
}

func (r *fakeRuntime) ReopenContainerLog(_ context.Context, in *runtimeapi.ReopenContainerLogRequest, _ ...grpc.CallOption) (*runtimeapi.ReopenContainerLogResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reopenErr != nil {
		return nil, r.reopenErr
	}
	r.reopened = append(r.reopened, in.ContainerId)
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
