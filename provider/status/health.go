package status

import corev1 "k8s.io/api/core/v1"

// Health is what a running container instance's probes say of it (package prober).
type Health struct {
	ID      string // CRI container id
	Started bool
	Ready   bool
}

// ApplyHealth sets the started and ready of running containers from their probes, by container
// name; the others keep what their CRI state says. A terminal pod's containers are not ready.
func ApplyHealth(ss []corev1.ContainerStatus, health map[string]Health, terminal bool) {
	for i := range ss {
		h, ok := health[ss[i].Name]
		if !ok || ss[i].State.Running == nil || ss[i].ContainerID != "containerd://"+h.ID {
			continue
		}
		started := h.Started
		ss[i].Started = &started
		ss[i].Ready = h.Ready && !terminal
	}
}
