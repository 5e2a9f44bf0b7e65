package podworker

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// orphanGrace is how long a sandbox of a pod Kubernetes no longer has is left alone before it
// is removed: long enough for a pod that is being created to show up in the informer.
const orphanGrace = time.Minute

// podDirsEvery is how many relists apart the pod directories are listed (collectPodDirs): an
// orphaned one goes between orphanGrace and orphanGrace plus this many periods after it is
// first seen.
const podDirsEvery = 15

// relistLoop lists everything this node owns on the host every RelistPeriod (the kubelet's
// PLEG relist), wakes the worker of every pod whose containers changed, and collects what no
// pod owns any more. Container events (eventLoop) make most changes known sooner; the relist
// makes sure none is missed for longer than one period.
func (p *Worker) relistLoop(ctx context.Context) {
	r := relister{p: p, last: map[types.UID]string{}, orphans: map[string]time.Time{}}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := r.relist(ctx); err != nil && ctx.Err() == nil {
			log.G(ctx).WithError(err).Debug("relist failed")
		}
	}, p.cfg.RelistPeriod)
}

type relister struct {
	p       *Worker
	last    map[types.UID]string // per pod: its sandboxes' and containers' ids and states
	orphans map[string]time.Time // sandbox id or pod directory -> first seen without a pod
	n       int                  // relists with the pod lister synced
}

func (r *relister) relist(ctx context.Context) error {
	p := r.p
	sel := map[string]string{kuberuntime.LabelNode: p.cfg.NodeName}
	sbs, err := p.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return err
	}
	ctrs, err := p.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return err
	}
	parts := map[types.UID][]string{}
	for _, sb := range sbs.Items {
		uid := types.UID(sb.Labels[kuberuntime.LabelPodUID])
		parts[uid] = append(parts[uid], sb.Id+"="+sb.State.String())
	}
	for _, c := range ctrs.Containers {
		uid := types.UID(c.Labels[kuberuntime.LabelPodUID])
		parts[uid] = append(parts[uid], c.Id+"="+c.State.String())
	}
	now := map[types.UID]string{}
	for uid, ps := range parts {
		sort.Strings(ps)
		now[uid] = strings.Join(ps, ",")
	}
	for _, uid := range p.store.uids() {
		if now[uid] != r.last[uid] {
			p.workers.wake(uid)
		}
	}
	// The kubelet syncs a pod when another controller changes its status; virtual-kubelet
	// tells the provider of spec changes only. A condition a readiness gate names is one.
	for _, uid := range p.store.matching(p.othersChanged) {
		p.workers.wake(uid)
	}
	r.last = now
	if p.cfg.PodsSynced() {
		r.collect(ctx, sbs.Items)
		if r.n++; r.n%podDirsEvery == 1 {
			r.collectPodDirs(ctx)
		}
	}
	return nil
}

// collect deletes pods Kubernetes no longer has (virtual-kubelet does not call DeletePod for a
// pod that had already finished) and, after orphanGrace, sandboxes that belong to no pod.
func (r *relister) collect(ctx context.Context, sbs []*runtimeapi.PodSandbox) {
	p := r.p
	for _, pod := range p.store.list() {
		if !p.inAPI(pod.Namespace, pod.Name, pod.UID) && p.store.markDeleting(pod.UID, 0) {
			p.workers.wake(pod.UID)
		}
	}
	seen := map[string]bool{}
	for _, sb := range sbs {
		uid := types.UID(sb.Labels[kuberuntime.LabelPodUID])
		if p.store.has(uid) || p.inAPI(sb.Labels[kuberuntime.LabelPodNamespace], sb.Labels[kuberuntime.LabelPodName], uid) {
			continue
		}
		seen[sb.Id] = true
		first, ok := r.orphans[sb.Id]
		if !ok {
			r.orphans[sb.Id] = time.Now()
			continue
		}
		if time.Since(first) < orphanGrace {
			continue
		}
		log.G(ctx).WithField("sandbox", sb.Id).WithField("pod", sb.Labels[kuberuntime.LabelPodNamespace]+"/"+sb.Labels[kuberuntime.LabelPodName]).Info("removing sandbox of a pod that no longer exists")
		if err := p.removeSandbox(ctx, sb.Id); err != nil {
			log.G(ctx).WithError(err).Warn("cannot remove orphaned sandbox")
		}
	}
	for id := range r.orphans {
		if !seen[id] && !strings.HasPrefix(id, "/") { // pod directories are tracked by collectPodDirs
			delete(r.orphans, id)
		}
	}
}

// collectPodDirs removes, after orphanGrace, the volume and log directories of pods that
// neither this Satellite nor Kubernetes has any longer (a pod deleted while Satellite was
// away, or while its sandbox was being made). Listed every podDirsEvery relists. Only log
// directories carrying this node's mark are considered: the log root may be shared.
func (r *relister) collectPodDirs(ctx context.Context) {
	p := r.p
	dirs, err := p.host.Glob(ctx, path.Join(p.cfg.PodDir, "*_*_*"))
	if err != nil {
		log.G(ctx).WithError(err).Debug("cannot list pod directories")
		return
	}
	// The log directories this node recorded (logDirRecord), and those marked inside, as
	// Satellite did before it kept records.
	marked := fmt.Sprintf("cd %[1]s 2>/dev/null || exit 0; for d in %[2]s/*_*_*; do [ -d \"$d\" ] && echo \"${d#*/}\"; done; for d in *_*_*/%[2]s; do [ -d \"$d\" ] && echo \"${d%%%%/*}\"; done; exit 0",
		remote.Quote(p.cfg.LogRoot), remote.Quote(p.logDirMark()))
	out, err := p.host.Output(ctx, marked)
	if err != nil {
		log.G(ctx).WithError(err).Debug("cannot list pod log directories")
		return
	}
	logDirs := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		d = path.Join(p.cfg.LogRoot, d)
		if !logDirs[d] {
			logDirs[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		parts := strings.SplitN(path.Base(d), "_", 3)
		if len(parts) != 3 {
			continue
		}
		uid := types.UID(parts[2])
		if p.store.has(uid) || p.inAPI(parts[0], parts[1], uid) {
			delete(r.orphans, d)
			continue
		}
		first, ok := r.orphans[d]
		if !ok {
			r.orphans[d] = time.Now()
			continue
		}
		if time.Since(first) < orphanGrace {
			continue
		}
		remove, what := p.volumes.RemoveDir, "volumes"
		if logDirs[d] {
			remove, what = p.removeLogDir, "logs"
		}
		log.G(ctx).WithField("dir", d).Info("removing " + what + " of a pod that no longer exists")
		if err := remove(ctx, d); err != nil {
			log.G(ctx).WithError(err).Warn("cannot remove orphaned pod directory")
			continue
		}
		delete(r.orphans, d)
	}
}

// logDirMark is the directory of the log root in which Satellite records each pod log
// directory it creates (logDirRecord). Satellite before 2026-12-02 made it inside each one.
func (p *Worker) logDirMark() string { return ".satellite-" + p.cfg.NodeName }

// logDirRecord is the record of a pod log directory: a directory of the same name in the log
// root's logDirMark.
func (p *Worker) logDirRecord(dir string) string {
	return path.Join(p.cfg.LogRoot, p.logDirMark(), path.Base(dir))
}

// inAPI reports whether Kubernetes still has the pod (by name and UID) on this node. When the
// answer is unknown it says yes: nothing is deleted on a doubt.
func (p *Worker) inAPI(namespace, name string, uid types.UID) bool {
	if p.lister == nil {
		return true
	}
	pod, err := p.lister.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		return true
	}
	return pod.UID == uid
}

// eventLoop wakes a pod's worker on every container event of its sandbox (CRI
// GetContainerEvents, containerd 1.7 and later). On a runtime without events it returns and
// the relist does the work.
func (p *Worker) eventLoop(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		err := p.streamEvents(ctx)
		if errors.Is(err, remote.ErrUnimplemented) {
			log.G(ctx).Info("the host's runtime does not stream container events; relying on relist")
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.G(ctx).WithError(err).Debug("container event stream ended")
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (p *Worker) streamEvents(ctx context.Context) error {
	stream, err := p.cri.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		uid := types.UID(ev.GetPodSandboxStatus().GetMetadata().GetUid())
		if uid != "" && p.store.has(uid) {
			p.workers.wake(uid)
		}
	}
}
