package volumes

import (
	"context"
	"io"
	"os"
	"path"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/remote"
)

// Host is what the manager needs of the remote host: shell commands, which set up volumes,
// and files, through which the subPath helper is installed.
type Host interface {
	// Output runs a shell command and returns its standard output; a command that exits
	// non-zero is a *remote.ExitError.
	Output(ctx context.Context, cmd string) ([]byte, error)
	// Input runs a shell command with the given standard input (for data that must not be
	// in a command line).
	Input(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error)
	Open(ctx context.Context, path string) (remote.File, error)
	MkdirAll(ctx context.Context, path string, mode os.FileMode) error
	WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error
	// Rename renames a file, replacing the target.
	Rename(ctx context.Context, from, to string) error
	Remove(ctx context.Context, path string) error
}

// Objects reads the ConfigMaps and Secrets that volumes project. A missing object is a
// NotFound error (apierrors.IsNotFound).
type Objects interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// TokenRequester is the TokenRequest API of service accounts.
type TokenRequester interface {
	CreateToken(ctx context.Context, namespace, serviceAccount string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// Config is what a Manager is made of.
type Config struct {
	Host Host
	// PodDir is the directory on the host under which each pod has its own, named
	// <namespace>_<name>_<uid> like its log directory.
	PodDir string
	// Objects reads ConfigMaps and Secrets; nil: none can be read.
	Objects Objects
	// Tokens issues service account tokens for projected volumes; nil: none can be.
	Tokens   TokenRequester
	Recorder record.EventRecorder
	// Allocatable is the node's allocatable resources: what the downward API gives for a
	// limit the container does not set.
	Allocatable func() corev1.ResourceList
	// SubPathHelper gives the satellite-subpath helper for the host's architecture, which
	// subPath mounts need; nil: containers with a subPath cannot be created.
	SubPathHelper HelperSource
}

// Manager makes pods' volumes and the kubelet's per-pod files ready on the host, gives
// containers their mounts, and removes a pod's directory with it. It keeps what it knows of
// each pod (content written, tokens issued, the last FailedMount) until Forget.
//
// Calls for one pod must not overlap (its worker makes them one at a time); calls for
// different pods may.
type Manager struct {
	host        Host
	root        string // Config.PodDir
	objects     Objects
	tokens      TokenRequester
	recorder    record.EventRecorder
	allocatable func() corev1.ResourceList
	helper      *subPathHelper

	mu   sync.Mutex
	pods map[types.UID]*podState
}

// podState is what the manager knows of one pod; it belongs to the pod's worker.
type podState struct {
	dirMade    bool                   // the pod's directory was made by this process
	hashes     map[string]string      // by volume name: content hash, or "ready"
	setUpAt    time.Time              // when the volumes were last brought up to date
	tokens     map[string]issuedToken // by volume/path
	mountError string                 // the last FailedMount message
	files      podFiles               // the hosts file and termination message files
	filesPlan  *podFilesWrite         // their first writing, for the next volume script
}

// New makes a Manager.
func New(cfg Config) *Manager {
	if cfg.Allocatable == nil {
		cfg.Allocatable = func() corev1.ResourceList { return nil }
	}
	return &Manager{
		host:        cfg.Host,
		root:        cfg.PodDir,
		objects:     cfg.Objects,
		tokens:      cfg.Tokens,
		recorder:    cfg.Recorder,
		allocatable: cfg.Allocatable,
		// Beside the pod directories, in a directory only root can change: what is run
		// there as root must not be replaceable by a pod.
		helper: &subPathHelper{host: cfg.Host, dir: path.Join(path.Dir(cfg.PodDir), "bin"), source: cfg.SubPathHelper},
		pods:   map[types.UID]*podState{},
	}
}

// pod returns the pod's state, made on first use.
func (m *Manager) pod(uid types.UID) *podState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.pods[uid]
	if !ok {
		st = &podState{hashes: map[string]string{}, tokens: map[string]issuedToken{}}
		m.pods[uid] = st
	}
	return st
}

// Forget drops what the manager keeps of a pod that is gone.
func (m *Manager) Forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pods, uid)
}

// podDir is the pod's directory on the host, named like its log directory:
// <namespace>_<name>_<uid>.
func (m *Manager) podDir(pod *corev1.Pod) string {
	return path.Join(m.root, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

func (m *Manager) volumeDir(pod *corev1.Pod, name string) string {
	return path.Join(m.podDir(pod), "volumes", name)
}
