package provider

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// logRotatePeriod is how often log sizes are checked (the kubelet's
// containerLogMonitorInterval).
const logRotatePeriod = 10 * time.Second

// rotateLoop rotates the log files of running containers the way the kubelet's container log
// manager does (pkg/kubelet/logs): a file over ContainerLogMaxSize is renamed with a
// timestamp suffix, the runtime is asked to reopen it (CRI ReopenContainerLog), and only
// ContainerLogMaxFiles files per container are kept. Nothing else on the host rotates them.
func (p *Provider) rotateLoop(ctx context.Context) {
	every(ctx, logRotatePeriod, func() {
		if err := p.rotateLogs(ctx); err != nil && ctx.Err() == nil {
			log.G(ctx).WithError(err).Warn("log rotation")
		}
	})
}

func (p *Provider) rotateLogs(ctx context.Context) error {
	ctrs, err := p.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{kuberuntime.LabelNode: p.cfg.NodeName},
	}})
	if err != nil {
		return err
	}
	for _, c := range ctrs.Containers {
		if err := p.rotateLog(ctx, c); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.Id).Warn("cannot rotate container log")
		}
	}
	return nil
}

// containerLogFile is where Satellite told the runtime to write a container's log.
func (p *Provider) containerLogFile(c *runtimeapi.Container) string {
	l := c.Labels
	return kuberuntime.PodLogDir(p.cfg.LogRoot, l[kuberuntime.LabelPodNamespace], l[kuberuntime.LabelPodName], l[kuberuntime.LabelPodUID]) + "/" +
		kuberuntime.ContainerLogPath(c.GetMetadata().GetName(), c.GetMetadata().GetAttempt())
}

func (p *Provider) rotateLog(ctx context.Context, c *runtimeapi.Container) error {
	file := p.containerLogFile(c)
	fi, err := p.host.Stat(ctx, file)
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() < p.cfg.ContainerLogMaxSize {
		return nil
	}
	rotated := file + "." + time.Now().UTC().Format("20060102-150405.000000000")
	if err := p.host.Rename(ctx, file, rotated); err != nil {
		return err
	}
	if _, err := p.cri.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: c.Id}); err != nil {
		// As the kubelet does: put the file back so the runtime's open file stays the log.
		if rerr := p.host.Rename(ctx, rotated, file); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	p.rotations.rotated(file)
	return p.pruneRotated(ctx, file)
}

// pruneRotated keeps the newest ContainerLogMaxFiles-1 rotated files of a log.
func (p *Provider) pruneRotated(ctx context.Context, file string) error {
	old, err := p.host.Glob(ctx, file+".*")
	if err != nil {
		return err
	}
	sort.Strings(old) // the suffix is a UTC timestamp: lexical order is age
	keep := p.cfg.ContainerLogMaxFiles - 1
	for i := 0; i < len(old)-keep; i++ {
		if err := p.host.Remove(ctx, old[i]); err != nil && !errors.Is(err, remote.ErrNotFound) {
			return err
		}
	}
	return nil
}
