package prober

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
)

// expandCommand replaces $(VAR) in an exec probe's command with the container's static env
// values, as the kubelet's ExpandContainerCommandOnlyStatic: a variable set from a Secret,
// ConfigMap or field reads as empty, an unknown one stays as written, and $$ is a literal $.
func expandCommand(cmd []string, env []corev1.EnvVar) []string {
	if len(cmd) == 0 {
		return cmd
	}
	vars := make(map[string]string, len(env))
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = kubecontainer.Expand(s, kubecontainer.MappingFor(vars))
	}
	return out
}

// apiEnv is the container's env as the API has it: virtual-kubelet hands over env already
// resolved (Secrets included), which the kubelet's expansion of probe commands never sees.
func (m *Manager) apiEnv(pod *corev1.Pod, container string) []corev1.EnvVar {
	if m.pods == nil {
		return nil
	}
	api, err := m.pods.Pods(pod.Namespace).Get(pod.Name)
	if err != nil || api.UID != pod.UID {
		return nil
	}
	if c := kubecontainer.FindLongRunning(api, container); c != nil {
		return c.Env
	}
	return nil
}
