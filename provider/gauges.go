package provider

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
)

// PodPhases counts the node's pods by the phase last published, for Satellite's own metrics.
// A pod not given a status yet counts as Pending, as the API shows it.
func (p *Provider) PodPhases() map[corev1.PodPhase]int {
	return p.pods.Phases()
}

// GPUUsage is the GPUs' usage as last read with the host facts (every minute); none while
// GPUs are off or nvidia-smi did not answer.
func (p *Provider) GPUUsage() []gpu.Usage { return p.gpu.Usage() }
