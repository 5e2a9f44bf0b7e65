package provider

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// PodPhases counts the node's pods by the phase last published, for Satellite's own metrics.
// A pod not given a status yet counts as Pending, as the API shows it.
func (p *Provider) PodPhases() map[corev1.PodPhase]int {
	return p.store.phases()
}

func (s *store) phases() map[corev1.PodPhase]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[corev1.PodPhase]int{}
	for _, rec := range s.byUID {
		phase := rec.pod.Status.Phase
		if phase == "" {
			phase = corev1.PodPending
		}
		out[phase]++
	}
	return out
}

// GPUUsage is the GPUs' usage as last read with the host facts (every minute); none while
// GPUs are off or nvidia-smi did not answer.
func (p *Provider) GPUUsage() []GPUUsage {
	if p.cfg.GPUMode == GPUModeOff {
		return nil
	}
	p.node.mu.Lock()
	defer p.node.mu.Unlock()
	if p.node.facts == nil {
		return nil
	}
	return slices.Clone(p.node.facts.GPUUsage)
}
