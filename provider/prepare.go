package provider

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// prepareContainer completes a container's CRI config with what the kubelet adds when it
// creates a container (kuberuntime generateContainerConfig): the resolved environment
// (env.go) and the runAsNonRoot check (nonroot.go). An error leaves the container waiting in
// CreateContainerConfigError with the error as its message, as with the kubelet.
func (p *Provider) prepareContainer(ctx context.Context, rec *podRecord, pod *corev1.Pod, c *corev1.Container, cfg *runtimeapi.ContainerConfig) error {
	envs, err := containerEnv(pod, c, p.envSources())
	if err != nil {
		return err
	}
	cfg.Envs = envs
	return p.checkRunAsNonRoot(ctx, pod, c)
}
