package gpu

import (
	"context"
	"slices"
	"sync"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Config configures the device manager.
type Config struct {
	// Mode says how the host's GPUs are advertised and given to containers; "" is ModeOff.
	Mode Mode
	// NvidiaSMI is the nvidia-smi the host runs to list them (a name in its PATH or a path);
	// a host without it has no GPUs.
	NvidiaSMI string
	// RuntimeHandler is the CRI runtime handler of the sandboxes of pods that ask for GPUs
	// while they are given by NVIDIA_VISIBLE_DEVICES (env mode): containerd's runtime running
	// nvidia-container-runtime; "" is containerd's default runtime (runtimehandler.go).
	RuntimeHandler string
	// RuntimeClasses looks up the RuntimeClass a pod's runtimeClassName names; without it
	// such a pod's sandbox cannot be created.
	RuntimeClasses RuntimeClassGetter
	// NodeContainers are the CRI labels of the node's containers: only theirs hold devices
	// (another node's containers on the same host hold that node's).
	NodeContainers map[string]string
}

// Runtime is what the device manager asks of the host's CRI runtime: the containers that hold
// devices, and containerd's configuration (CDI, runtime handlers).
type Runtime interface {
	ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, opts ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error)
	Status(ctx context.Context, in *runtimeapi.StatusRequest, opts ...grpc.CallOption) (*runtimeapi.StatusResponse, error)
}

// Commander runs a shell command on the host and returns its standard output.
type Commander interface {
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// Manager owns the node's GPUs: those last read, the mode auto found, and the allocation lock.
type Manager struct {
	cfg  Config
	cri  Runtime
	host Commander

	// alloc serialises allocation on the node: from reading which devices containers hold
	// to creating the container that takes new ones (pod workers run concurrently).
	alloc sync.Mutex

	mu      sync.Mutex
	read    bool // Observe has been called
	devices []Device
	usage   []Usage
	mode    Mode // what auto found; "" before an answer
}

// New makes a device manager; cri and host are only used in ModeAuto and to allocate.
func New(cfg Config, cri Runtime, host Commander) *Manager {
	if cfg.Mode == "" {
		cfg.Mode = ModeOff
	}
	return &Manager{cfg: cfg, cri: cri, host: host}
}

// FactsCommand is the command fragment that lists the host's GPUs (FactsCommand), "" when
// GPUs are off.
func (m *Manager) FactsCommand() string {
	if m.cfg.Mode == ModeOff {
		return ""
	}
	return FactsCommand(m.cfg.NvidiaSMI)
}

// Observe takes a new reading of the host's GPUs and returns the devices lost and added since
// the last one (none on the first). When nvidia-smi failed, the GPUs last read are kept: the
// node does not lose its GPUs, and pods holding them their devices, on one bad answer. With
// --gpu-mode=auto the host's containerd is asked again how it gives GPUs.
func (m *Manager) Observe(ctx context.Context, r Reading) (lost, added []Device) {
	if m.cfg.Mode == ModeOff {
		return nil, nil
	}
	m.mu.Lock()
	read, old, last := m.read, m.devices, m.mode
	m.mu.Unlock()
	devs := r.Devices
	if r.Err != nil {
		log.G(ctx).WithError(r.Err).Warn("cannot list the host's GPUs; keeping those last read")
		if read {
			devs = old
		}
	}
	mode := m.resolveMode(ctx, devs, last)
	m.mu.Lock()
	m.read, m.devices, m.usage, m.mode = true, devs, r.Usage, mode
	m.mu.Unlock()
	if !read {
		return nil, nil
	}
	return changes(old, devs)
}

// Devices are the host's GPUs as last read, none when GPUs are off.
func (m *Manager) Devices() []Device {
	if m.cfg.Mode == ModeOff {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.devices)
}

// Usage is the GPUs' usage as last read with the host facts; none while GPUs are off or
// nvidia-smi did not answer.
func (m *Manager) Usage() []Usage {
	if m.cfg.Mode == ModeOff {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.usage)
}

// Mode is how containers are given their GPUs: the configured mode, or what auto found on
// the host. auto has its answer from the reading that first finds GPUs, unless containerd
// could not be asked then: until it can, env.
func (m *Manager) Mode() Mode {
	if m.cfg.Mode != ModeAuto {
		return m.cfg.Mode
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mode == "" {
		return ModeEnv
	}
	return m.mode
}
