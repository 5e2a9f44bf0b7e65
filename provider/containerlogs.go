package provider

import (
	"context"
	"io"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/logs"
)

// GetContainerLogs reads a container's CRI log file on the host over SFTP and formats it as
// kubectl asks (package logs); the container instance is the one the pod status names.
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	pod := p.pods.Get(namespace, podName)
	if pod == nil {
		return nil, errdefs.NotFoundf("pod %q does not exist", podName)
	}
	id, err := logs.ContainerID(podName, &pod.Status, containerName, opts.Previous)
	if err != nil {
		return nil, errdefs.AsInvalidInput(err)
	}
	if err := p.hostDown(); err != nil {
		return nil, err
	}
	return p.logs.Open(ctx, podName, containerName, id, opts)
}

// containerLogFile is where Satellite told the runtime to write a container's log.
func containerLogFile(logRoot string, c *runtimeapi.Container) string {
	l := c.Labels
	return kuberuntime.PodLogDir(logRoot, l[kuberuntime.LabelPodNamespace], l[kuberuntime.LabelPodName], l[kuberuntime.LabelPodUID]) + "/" +
		kuberuntime.ContainerLogPath(c.GetMetadata().GetName(), c.GetMetadata().GetAttempt())
}
