package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/remote"
)

// Node condition reasons Satellite sets on Ready, besides the kubelet's KubeletReady.
const (
	ReasonSSHUnreachable  = "SSHUnreachable"
	ReasonHostKeyMismatch = "HostKeyMismatch"
	ReasonRuntimeDown     = "ContainerRuntimeUnreachable"
	ReasonRuntimeNotReady = "ContainerRuntimeNotReady"
	ReasonNetworkNotReady = "NetworkNotReady"
)

// factsEvery is how many node status checks pass between two reads of the host's capacity.
const factsEvery = 6

// Host is what the node status needs of the host: its SSH link and one shell command that
// prints its facts.
type Host interface {
	// Ping checks the SSH link.
	Ping(ctx context.Context) error
	// Output runs a shell command on the host and returns its standard output.
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// Runtime is what the node status asks of the host's CRI runtime: its version and conditions.
type Runtime interface {
	Version(ctx context.Context, in *runtimeapi.VersionRequest, opts ...grpc.CallOption) (*runtimeapi.VersionResponse, error)
	Status(ctx context.Context, in *runtimeapi.StatusRequest, opts ...grpc.CallOption) (*runtimeapi.StatusResponse, error)
}

// GPUs is the device manager (gpu.Manager): the command fragment that lists the GPUs, what it
// makes of a reading, and the GPUs it advertises.
type GPUs interface {
	FactsCommand() string
	Observe(ctx context.Context, r gpu.Reading) (lost, added []gpu.Device)
	Devices() []gpu.Device
}

// Config describes the node as Satellite registers it.
type Config struct {
	NodeName string
	// NodeIP is the node's InternalIP, and KubeletPort its kubelet API's port.
	NodeIP      string
	KubeletPort int32
	// ContainerdRoot is containerd's root directory on the host: its disk is the node's
	// ephemeral storage.
	ContainerdRoot string
	// MaxPods is the node's pod capacity; Reserved is taken off capacity for allocatable.
	MaxPods  int64
	Reserved corev1.ResourceList
	// Labels and Taints are set on the node object, besides the kubelet's own labels.
	Labels map[string]string
	Taints []corev1.Taint
	// Version is reported as the kubelet version.
	Version string
	// Period is how often the node's conditions are checked. Default 10 s.
	Period time.Duration
}

// Deps are what the node status reads and reports through.
type Deps struct {
	Host     Host
	Runtime  Runtime
	GPUs     GPUs
	Recorder record.EventRecorder
	// Conditions are more of the node's conditions, as they stand when the node is checked
	// (the cluster network's); nil: none.
	Conditions func() []corev1.NodeCondition
}

// Manager keeps the node object true to the host: it is virtual-kubelet's NodeProvider.
type Manager struct {
	cfg      Config
	host     Host
	cri      Runtime
	gpus     GPUs
	recorder record.EventRecorder
	extra    func() []corev1.NodeCondition

	mu    sync.Mutex
	node  *corev1.Node
	facts *hostFacts
	cb    func(*corev1.Node)
	// down is why the host cannot be reached, from the last check; nil while it can.
	down error
}

// ErrHostUnreachable is returned at once for requests that need the host while the last
// check found its SSH link down, instead of waiting for a connection that will not come.
var ErrHostUnreachable = errors.New("host unreachable over SSH")

// New makes the node status; Node reads the host a first time, Run keeps reading it.
func New(cfg Config, deps Deps) *Manager {
	if cfg.Period == 0 {
		cfg.Period = 10 * time.Second
	}
	return &Manager{cfg: cfg, host: deps.Host, cri: deps.Runtime, gpus: deps.GPUs, recorder: deps.Recorder, extra: deps.Conditions}
}

// HostDown returns why the host is unreachable (wrapping ErrHostUnreachable) as the last
// check found it, or nil.
func (m *Manager) HostDown() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// Allocatable is the node's allocatable as last reported (nil before the host was first
// read), which unset limits read as.
func (m *Manager) Allocatable() corev1.ResourceList {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node == nil {
		return nil
	}
	return m.node.Status.Allocatable.DeepCopy()
}

// Ping tells virtual-kubelet that Satellite itself is alive, so the node's lease is renewed
// even while the host is unreachable: the Ready condition says how the host is.
func (m *Manager) Ping(context.Context) error { return nil }

// NotifyNodeStatus registers the callback through which node status changes are sent.
func (m *Manager) NotifyNodeStatus(_ context.Context, cb func(*corev1.Node)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cb = cb
}

// Node reads the host and returns the node object to register. When the host cannot be read
// the node is registered NotReady, with the reason, and corrected once it can.
func (m *Manager) Node(ctx context.Context) *corev1.Node {
	m.check(ctx, true)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node.DeepCopy()
}

// downRecheck is how often a node that is not Ready is checked: the SSH connection's own
// back-off decides when the host is dialed again, and the node turns Ready within seconds of
// the host being back instead of at the next NodeStatusPeriod.
const downRecheck = 2 * time.Second

// Run checks the node every Period (more often while it is not Ready) until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	i := 0
	ready := true
	for {
		period := m.cfg.Period
		if !ready {
			period = min(period, downRecheck)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		i++
		ready = m.check(ctx, i%factsEvery == 0)
	}
}

// check probes SSH and the runtime, re-reads the host's facts when asked (or when never read),
// and sends the node when anything changed. It returns whether the node is Ready.
func (m *Manager) check(ctx context.Context, refreshFacts bool) bool {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Period)
	defer cancel()
	ready, reason, message, runtimeVersion := m.probe(ctx)
	m.mu.Lock()
	facts := m.facts
	m.mu.Unlock()
	if ready && (refreshFacts || facts == nil) {
		if f, err := m.readFacts(ctx); err == nil {
			facts = f
		} else {
			log.G(ctx).WithError(err).Warn("cannot read the host's capacity")
		}
	}
	node := m.nodeObject(facts, m.gpus.Devices(), runtimeVersion, ready, reason, message)
	m.mu.Lock()
	old, cb := m.node, m.cb
	m.down = nil
	if reason == ReasonSSHUnreachable || reason == ReasonHostKeyMismatch {
		m.down = fmt.Errorf("node %s: %w: %s", m.cfg.NodeName, ErrHostUnreachable, message)
	}
	if old != nil && old.Status.NodeInfo.ContainerRuntimeVersion != "" && runtimeVersion == "" {
		node.Status.NodeInfo.ContainerRuntimeVersion = old.Status.NodeInfo.ContainerRuntimeVersion
	}
	keepTransitionTimes(node, old)
	changed := old == nil || !apiequality.Semantic.DeepEqual(old.Status, node.Status)
	m.node, m.facts = node, facts
	m.mu.Unlock()
	if changed && old != nil {
		log.G(ctx).WithField("ready", ready).WithField("reason", reason).Info("node status changed")
		m.recordTransition(old, ready, reason, message)
	}
	if changed && cb != nil {
		cb(node.DeepCopy())
	}
	return ready
}

// readFacts reads the host's facts, and hands its GPUs to the device manager.
func (m *Manager) readFacts(ctx context.Context) (*hostFacts, error) {
	out, err := m.host.Output(ctx, hostFactsCommand(m.cfg.ContainerdRoot, m.gpus.FactsCommand()))
	if err != nil {
		return nil, err
	}
	f, err := parseHostFacts(out)
	if err != nil {
		return nil, err
	}
	lost, added := m.gpus.Observe(ctx, f.GPU)
	m.recordGPUChanges(ctx, lost, added)
	return &f, nil
}

// probe checks the SSH link, then the runtime's own conditions (CRI Status).
func (m *Manager) probe(ctx context.Context) (ready bool, reason, message, runtimeVersion string) {
	if err := m.host.Ping(ctx); err != nil {
		var hk *remote.HostKeyError
		if errors.As(err, &hk) {
			return false, ReasonHostKeyMismatch, err.Error(), ""
		}
		return false, ReasonSSHUnreachable, err.Error(), ""
	}
	v, err := m.cri.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return false, ReasonRuntimeDown, fmt.Sprintf("container runtime on the host is not answering: %v", err), ""
	}
	// As the kubelet shows it: the runtime's version as a semantic version, without "v".
	runtimeVersion = v.RuntimeName + "://" + strings.TrimPrefix(v.RuntimeVersion, "v")
	st, err := m.cri.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return false, ReasonRuntimeDown, fmt.Sprintf("container runtime status: %v", err), runtimeVersion
	}
	for _, c := range st.GetStatus().GetConditions() {
		if c.Status {
			continue
		}
		switch c.Type {
		case runtimeapi.RuntimeReady:
			return false, ReasonRuntimeNotReady, fmt.Sprintf("container runtime not ready: %s: %s", c.Reason, c.Message), runtimeVersion
		case runtimeapi.NetworkReady:
			return false, ReasonNetworkNotReady, fmt.Sprintf("container runtime network not ready: %s: %s", c.Reason, c.Message), runtimeVersion
		}
	}
	return true, "KubeletReady", "Satellite is ready: SSH link and container runtime on the host are healthy", runtimeVersion
}

// recordTransition emits a node event when readiness or its reason changes, as the kubelet
// emits NodeReady and NodeNotReady: a Warning with the reason (HostKeyMismatch, SSHUnreachable,
// ...) and its message, or NodeReady when the host is back.
func (m *Manager) recordTransition(old *corev1.Node, ready bool, reason, message string) {
	var oldReason string
	oldReady := false
	for _, c := range old.Status.Conditions {
		if c.Type == corev1.NodeReady {
			oldReady, oldReason = c.Status == corev1.ConditionTrue, c.Reason
		}
	}
	if oldReady == ready && oldReason == reason {
		return
	}
	ref := kubecontainer.NodeRef(m.cfg.NodeName)
	if ready {
		m.recorder.Eventf(ref, corev1.EventTypeNormal, "NodeReady", "Node %s status is now: NodeReady", m.cfg.NodeName)
		return
	}
	m.recorder.Event(ref, corev1.EventTypeWarning, reason, message)
}

// recordGPUChanges emits a Warning GPULost event on the node for each GPU the host no longer
// reports, and a GPUAdded event for each new one: the node's nvidia.com/gpu changes with the
// same status update, and these say which device and why.
func (m *Manager) recordGPUChanges(ctx context.Context, lost, added []gpu.Device) {
	if len(lost) == 0 && len(added) == 0 {
		return
	}
	count := len(m.gpus.Devices())
	ref := kubecontainer.NodeRef(m.cfg.NodeName)
	for _, g := range lost {
		msg := fmt.Sprintf("GPU %d (%s, %s) is no longer reported by nvidia-smi on the host: %s is now %d", g.Index, g.UUID, g.Name, gpu.ResourceName, count)
		log.G(ctx).WithField("gpu", g.UUID).Warn(msg)
		m.recorder.Event(ref, corev1.EventTypeWarning, "GPULost", msg)
	}
	for _, g := range added {
		m.recorder.Eventf(ref, corev1.EventTypeNormal, "GPUAdded", "GPU %d (%s, %s) is reported by nvidia-smi on the host: %s is now %d", g.Index, g.UUID, g.Name, gpu.ResourceName, count)
	}
}
