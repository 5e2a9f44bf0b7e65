package podworker

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
)

// prepareContainer completes a container's CRI config with what the kubelet adds when it
// creates a container (kuberuntime generateContainerConfig), in its order: the resolved
// environment (env.go), the volume mounts with their subPaths bound on the host
// (volumes.Manager.Mounts), the runAsNonRoot check (podconfig.go), and the mounts of the pod's
// hosts file and of a fresh termination message file (volumes.Manager.FileMounts). An error
// leaves the container waiting in CreateContainerConfigError with the error as its message,
// as with the kubelet.
func (p *Worker) prepareContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cfg *runtimeapi.ContainerConfig) error {
	envs, err := containerEnv(ctx, pod, c, p.envSources())
	if err != nil {
		return err
	}
	cfg.Envs = envs
	vars := envVars(envs)
	mounts, err := p.volumes.Mounts(ctx, pod, c, vars)
	if err != nil {
		return err
	}
	cfg.Mounts = mounts
	cfg.Command, cfg.Args = expandCommandAndArgs(c, vars)
	if err := checkRunAsNonRoot(ctx, p.cri, pod, c); err != nil {
		return err
	}
	files, err := p.volumes.FileMounts(ctx, pod, c)
	if err != nil {
		return err
	}
	cfg.Mounts = append(cfg.Mounts, files...)
	return nil
}

// envVars is the container's resolved environment by name, for $(VAR) expansions.
func envVars(envs []*runtimeapi.KeyValue) map[string]string {
	vars := make(map[string]string, len(envs))
	for _, kv := range envs {
		vars[kv.Key] = kv.Value
	}
	return vars
}

// expandCommandAndArgs expands $(VAR) in the container's command and args with its environment,
// as the kubelet does (kubecontainer.ExpandContainerCommandAndArgs): `$(PORT)` is the value of
// PORT, `$$` is a `$`, and an undefined reference is left as written.
func expandCommandAndArgs(c *corev1.Container, vars map[string]string) (command, args []string) {
	for _, s := range c.Command {
		command = append(command, kubecontainer.Expand(s, kubecontainer.MappingFor(vars)))
	}
	for _, s := range c.Args {
		args = append(args, kubecontainer.Expand(s, kubecontainer.MappingFor(vars)))
	}
	return command, args
}
