package logs

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// rotatePeriod is how often log sizes are checked (the kubelet's
// containerLogMonitorInterval).
const rotatePeriod = 10 * time.Second

// Run rotates the log files of running containers until ctx ends, the way the kubelet's
// container log manager does (pkg/kubelet/logs): a file over MaxSize is renamed with a
// timestamp suffix, the runtime is asked to reopen it (CRI ReopenContainerLog), and only
// MaxFiles files per container are kept. Nothing else on the host rotates them.
func (m *Manager) Run(ctx context.Context) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := m.rotateAll(ctx); err != nil && ctx.Err() == nil {
			log.G(ctx).WithError(err).Warn("log rotation")
		}
	}, rotatePeriod)
}

func (m *Manager) rotateAll(ctx context.Context) error {
	ctrs, err := m.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: m.cfg.Selector,
	}})
	if err != nil {
		return err
	}
	for _, c := range ctrs.Containers {
		if err := m.rotate(ctx, c); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.Id).Warn("cannot rotate container log")
		}
	}
	return nil
}

func (m *Manager) rotate(ctx context.Context, c *runtimeapi.Container) error {
	file := m.cfg.LogFile(c)
	fi, err := m.files.Stat(ctx, file)
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() < m.cfg.MaxSize {
		return nil
	}
	rotated := file + "." + time.Now().UTC().Format("20060102-150405.000000000")
	if err := m.files.Rename(ctx, file, rotated); err != nil {
		return err
	}
	if _, err := m.cri.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: c.Id}); err != nil {
		// As the kubelet does: put the file back so the runtime's open file stays the log.
		if rerr := m.files.Rename(ctx, rotated, file); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	m.rotations.rotated(file)
	return m.prune(ctx, file)
}

// prune keeps the newest MaxFiles-1 rotated files of a log.
func (m *Manager) prune(ctx context.Context, file string) error {
	old, err := m.files.Glob(ctx, file+".*")
	if err != nil {
		return err
	}
	sort.Strings(old) // the suffix is a UTC timestamp: lexical order is age
	keep := m.cfg.MaxFiles - 1
	for i := 0; i < len(old)-keep; i++ {
		if err := m.files.Remove(ctx, old[i]); err != nil && !errors.Is(err, remote.ErrNotFound) {
			return err
		}
	}
	return nil
}
