package nodestatus

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
)

// nodeObject builds the node as Satellite registers it, with the host's gpus.
func (m *Manager) nodeObject(f *hostFacts, gpus []gpu.Device, runtimeVersion string, ready bool, reason, message string) *corev1.Node {
	cfg := m.cfg
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
			Conditions: append(nodeConditions(ready, reason, message), m.extraConditions()...),
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

func (m *Manager) extraConditions() []corev1.NodeCondition {
	if m.extra == nil {
		return nil
	}
	return m.extra()
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
