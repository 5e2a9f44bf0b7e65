package logs

import (
	"context"
	"os"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// Files is what the package does with the host's files. A missing file is an error that
// matches remote.ErrNotFound.
type Files interface {
	// Open opens a file for reading.
	Open(ctx context.Context, path string) (remote.File, error)
	// Stat describes a file.
	Stat(ctx context.Context, path string) (os.FileInfo, error)
	// Rename renames a file, replacing the target.
	Rename(ctx context.Context, from, to string) error
	// Remove removes a file.
	Remove(ctx context.Context, path string) error
	// Glob lists the files matching a pattern.
	Glob(ctx context.Context, pattern string) ([]string, error)
}

// Runtime is the part of the CRI runtime service the package calls.
type Runtime interface {
	ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, opts ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error)
	ContainerStatus(ctx context.Context, in *runtimeapi.ContainerStatusRequest, opts ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error)
	ReopenContainerLog(ctx context.Context, in *runtimeapi.ReopenContainerLogRequest, opts ...grpc.CallOption) (*runtimeapi.ReopenContainerLogResponse, error)
}

// Config configures a Manager.
type Config struct {
	// Selector selects, by CRI label, the containers whose logs the Manager rotates: this
	// node's.
	Selector map[string]string
	// LogFile is the host path of a container's log file, as the runtime was told it.
	LogFile func(*runtimeapi.Container) string
	// MaxSize is the size at which a log file is rotated, and MaxFiles how many files (the
	// current one included) are kept: the kubelet's containerLogMaxSize and
	// containerLogMaxFiles. Defaults 10 MiB and 5.
	MaxSize  int64
	MaxFiles int
}

// Manager reads, follows and rotates the containers' log files. It owns which files are
// being followed, so that a rotation moves their followers on to the new file.
type Manager struct {
	cfg       Config
	files     Files
	cri       Runtime
	rotations *rotations
}

// New makes a Manager; Run rotates the logs.
func New(cfg Config, files Files, cri Runtime) *Manager {
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 10 << 20
	}
	if cfg.MaxFiles < 2 {
		cfg.MaxFiles = 5
	}
	return &Manager{cfg: cfg, files: files, cri: cri, rotations: newRotations()}
}
