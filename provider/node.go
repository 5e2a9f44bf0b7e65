package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
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

// nodeState keeps the node object true to the host: it is virtual-kubelet's NodeProvider.
type nodeState struct {
	p *Provider

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

// hostDown returns why the host is unreachable, or nil.
func (p *Provider) hostDown() error {
	p.node.mu.Lock()
	defer p.node.mu.Unlock()
	return p.node.down
}

func newNodeState(p *Provider) *nodeState { return &nodeState{p: p} }

// NodeProvider is the provider's half that virtual-kubelet's node controller talks to.
func (p *Provider) NodeProvider() interface {
	Ping(context.Context) error
	NotifyNodeStatus(context.Context, func(*corev1.Node))
} {
	return p.node
}

// Ping tells virtual-kubelet that Satellite itself is alive, so the node's lease is renewed
// even while the host is unreachable: the Ready condition says how the host is.
func (n *nodeState) Ping(context.Context) error { return nil }

// NotifyNodeStatus registers the callback through which node status changes are sent.
func (n *nodeState) NotifyNodeStatus(_ context.Context, cb func(*corev1.Node)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cb = cb
}

// Node reads the host and returns the node object to register. When the host cannot be read
// the node is registered NotReady, with the reason, and corrected once it can.
func (p *Provider) Node(ctx context.Context) *corev1.Node {
	p.node.check(ctx, true)
	p.node.mu.Lock()
	defer p.node.mu.Unlock()
	return p.node.node.DeepCopy()
}

// downRecheck is how often a node that is not Ready is checked: the SSH connection's own
// back-off decides when the host is dialed again, and the node turns Ready within seconds of
// the host being back instead of at the next NodeStatusPeriod.
const downRecheck = 2 * time.Second

func (n *nodeState) run(ctx context.Context) {
	i := 0
	ready := true
	for {
		period := n.p.cfg.NodeStatusPeriod
		if !ready {
			period = min(period, downRecheck)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		i++
		ready = n.check(ctx, i%factsEvery == 0)
	}
}

// check probes SSH and the runtime, re-reads the host's facts when asked (or when never read),
// and sends the node when anything changed. It returns whether the node is Ready.
func (n *nodeState) check(ctx context.Context, refreshFacts bool) bool {
	ctx, cancel := context.WithTimeout(ctx, n.p.cfg.NodeStatusPeriod)
	defer cancel()
	p := n.p
	ready, reason, message, runtimeVersion := p.probe(ctx)
	n.mu.Lock()
	facts := n.facts
	n.mu.Unlock()
	if ready && (refreshFacts || facts == nil) {
		out, err := p.host.Output(ctx, hostFactsCommand(p.cfg.ContainerdRoot, p.gpu.FactsCommand()))
		if err == nil {
			var f hostFacts
			if f, err = parseHostFacts(out); err == nil {
				lost, added := p.gpu.Observe(ctx, f.GPU)
				n.recordGPUChanges(ctx, lost, added)
				facts = &f
			}
		}
		if err != nil {
			log.G(ctx).WithError(err).Warn("cannot read the host's capacity")
		}
	}
	node := p.nodeObject(facts, p.gpu.Devices(), runtimeVersion, ready, reason, message)
	n.mu.Lock()
	old, cb := n.node, n.cb
	n.down = nil
	if reason == ReasonSSHUnreachable || reason == ReasonHostKeyMismatch {
		n.down = fmt.Errorf("node %s: %w: %s", p.cfg.NodeName, ErrHostUnreachable, message)
	}
	if old != nil && old.Status.NodeInfo.ContainerRuntimeVersion != "" && runtimeVersion == "" {
		node.Status.NodeInfo.ContainerRuntimeVersion = old.Status.NodeInfo.ContainerRuntimeVersion
	}
	keepTransitionTimes(node, old)
	changed := old == nil || !apiequality.Semantic.DeepEqual(old.Status, node.Status)
	n.node, n.facts = node, facts
	n.mu.Unlock()
	if changed && old != nil {
		log.G(ctx).WithField("ready", ready).WithField("reason", reason).Info("node status changed")
		n.recordTransition(old, ready, reason, message)
	}
	if changed && cb != nil {
		cb(node.DeepCopy())
	}
	return ready
}

// probe checks the SSH link, then the runtime's own conditions (CRI Status).
func (p *Provider) probe(ctx context.Context) (ready bool, reason, message, runtimeVersion string) {
	if err := p.host.Ping(ctx); err != nil {
		var hk *remote.HostKeyError
		if errors.As(err, &hk) {
			return false, ReasonHostKeyMismatch, err.Error(), ""
		}
		return false, ReasonSSHUnreachable, err.Error(), ""
	}
	v, err := p.cri.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return false, ReasonRuntimeDown, fmt.Sprintf("container runtime on the host is not answering: %v", err), ""
	}
	// As the kubelet shows it: the runtime's version as a semantic version, without "v".
	runtimeVersion = v.RuntimeName + "://" + strings.TrimPrefix(v.RuntimeVersion, "v")
	st, err := p.cri.Status(ctx, &runtimeapi.StatusRequest{})
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

// nodeObject builds the node as Satellite registers it, with the host's gpus.
func (p *Provider) nodeObject(f *hostFacts, gpus []gpu.Device, runtimeVersion string, ready bool, reason, message string) *corev1.Node {
	cfg := p.cfg
	labels := map[string]string{"kubernetes.io/hostname": cfg.NodeName, "kubernetes.io/os": "linux"}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: cfg.NodeName, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: cfg.Taints},
		Status: corev1.NodeStatus{
			Phase: corev1.NodeRunning,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: cfg.NodeIP},
				{Type: corev1.NodeHostName, Address: cfg.NodeName},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: cfg.KubeletPort}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          cfg.Version,
				ContainerRuntimeVersion: runtimeVersion,
				OperatingSystem:         "linux",
			},
			Conditions: nodeConditions(ready, reason, message),
		},
	}
	pods := resource.NewQuantity(cfg.MaxPods, resource.DecimalSI)
	node.Status.Capacity = corev1.ResourceList{corev1.ResourcePods: *pods}
	if f != nil {
		node.Labels["kubernetes.io/arch"] = f.Arch
		node.Labels["kubernetes.io/os"] = f.OperatingSystem
		node.Status.NodeInfo.Architecture = f.Arch
		node.Status.NodeInfo.OperatingSystem = f.OperatingSystem
		node.Status.NodeInfo.KernelVersion = f.Kernel
		node.Status.NodeInfo.OSImage = f.OSImage
		node.Status.NodeInfo.MachineID = f.MachineID
		node.Status.NodeInfo.BootID = f.BootID
		node.Status.Capacity[corev1.ResourceCPU] = *resource.NewQuantity(f.CPUs, resource.DecimalSI)
		node.Status.Capacity[corev1.ResourceMemory] = *resource.NewQuantity(f.MemoryBytes, resource.BinarySI)
		node.Status.Capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(f.DiskBytes, resource.BinarySI)
		if len(gpus) > 0 {
			node.Status.Capacity[gpu.ResourceName] = *resource.NewQuantity(int64(len(gpus)), resource.DecimalSI)
			for k, v := range gpu.Labels(gpus) {
				node.Labels[k] = v
			}
		}
	}
	node.Status.Allocatable = allocatable(node.Status.Capacity, cfg.Reserved)
	return node
}

// allocatable is capacity minus reserved, never below zero, as the kubelet computes it
// (pkg/kubelet/cm/node_container_manager_linux.go GetNodeAllocatableAbsolute).
func allocatable(capacity, reserved corev1.ResourceList) corev1.ResourceList {
	out := capacity.DeepCopy()
	for name, r := range reserved {
		q, ok := out[name]
		if !ok {
			continue
		}
		q.Sub(r)
		if q.Sign() < 0 {
			q.Set(0)
		}
		out[name] = q
	}
	return out
}

func nodeConditions(ready bool, reason, message string) []corev1.NodeCondition {
	now := metav1.Now()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeReady, status, reason, message),
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
	}
}

// keepTransitionTimes carries over heartbeat and transition times of conditions that did not
// change, so that an unchanged node compares equal and its history stays true.
func keepTransitionTimes(node, old *corev1.Node) {
	if old == nil {
		return
	}
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		for _, o := range old.Status.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
				if o.Reason == c.Reason && o.Message == c.Message {
					c.LastHeartbeatTime = o.LastHeartbeatTime
				}
			}
		}
	}
}

// recordTransition emits a node event when readiness or its reason changes, as the kubelet
// emits NodeReady and NodeNotReady: a Warning with the reason (HostKeyMismatch, SSHUnreachable,
// ...) and its message, or NodeReady when the host is back.
func (n *nodeState) recordTransition(old *corev1.Node, ready bool, reason, message string) {
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
	ref := &corev1.ObjectReference{Kind: "Node", Name: n.p.cfg.NodeName, UID: types.UID(n.p.cfg.NodeName)}
	if ready {
		n.p.recorder.Eventf(ref, corev1.EventTypeNormal, "NodeReady", "Node %s status is now: NodeReady", n.p.cfg.NodeName)
		return
	}
	n.p.recorder.Event(ref, corev1.EventTypeWarning, reason, message)
}

// recordGPUChanges emits a Warning GPULost event on the node for each GPU the host no longer
// reports, and a GPUAdded event for each new one: the node's nvidia.com/gpu changes with the
// same status update, and these say which device and why.
func (n *nodeState) recordGPUChanges(ctx context.Context, lost, added []gpu.Device) {
	if len(lost) == 0 && len(added) == 0 {
		return
	}
	count := len(n.p.gpu.Devices())
	ref := &corev1.ObjectReference{Kind: "Node", Name: n.p.cfg.NodeName, UID: types.UID(n.p.cfg.NodeName)}
	for _, g := range lost {
		msg := fmt.Sprintf("GPU %d (%s, %s) is no longer reported by nvidia-smi on the host: %s is now %d", g.Index, g.UUID, g.Name, gpu.ResourceName, count)
		log.G(ctx).WithField("gpu", g.UUID).Warn(msg)
		n.p.recorder.Event(ref, corev1.EventTypeWarning, "GPULost", msg)
	}
	for _, g := range added {
		n.p.recorder.Eventf(ref, corev1.EventTypeNormal, "GPUAdded", "GPU %d (%s, %s) is reported by nvidia-smi on the host: %s is now %d", g.Index, g.UUID, g.Name, gpu.ResourceName, count)
	}
}
