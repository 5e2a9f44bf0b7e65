package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/satellite-vk/satellite/remote"
)

// resync is how often configMap, secret, downward API and projected volumes are brought up
// to date: with Secrets and ConfigMaps read at most 15 s old (cmd/satellite's object cache),
// a change reaches a running pod within a minute, as with the kubelet's one-minute sync
// period.
const resync = 45 * time.Second

// SetUp makes every volume of the pod ready on the host; it is idempotent and cheap when
// nothing changed (content is compared by hash). It returns the first failure as the kubelet
// words it, which it records as a FailedMount event unless it is the pod's last one again.
func (m *Manager) SetUp(ctx context.Context, pod *corev1.Pod) error {
	st := m.pod(pod.UID)
	err := m.setUp(ctx, st, pod)
	switch {
	case err == nil:
		st.mountError = ""
	case st.mountError != err.Error():
		m.recorder.Event(pod, corev1.EventTypeWarning, "FailedMount", err.Error())
		st.mountError = err.Error()
	}
	return err
}

// Due reports whether the pod's volumes are to be set up now: never yet, or not for resync.
func (m *Manager) Due(uid types.UID) bool {
	at := m.pod(uid).setUpAt
	return at.IsZero() || time.Since(at) >= resync
}

// Ready reports whether the pod's volumes have all been set up once: its containers may
// start, even while a later resync fails.
func (m *Manager) Ready(uid types.UID) bool {
	return !m.pod(uid).setUpAt.IsZero()
}

// ResyncIn is how soon the pod's volumes that follow the API (configMap, secret, downward
// API, projected) are due again, at least a second; 0 when the pod has none.
func (m *Manager) ResyncIn(pod *corev1.Pod) time.Duration {
	if !hasSyncedVolumes(pod) {
		return 0
	}
	d := resync - time.Since(m.pod(pod.UID).setUpAt)
	if d <= 0 {
		d = time.Second
	}
	return d
}

// hasSyncedVolumes reports whether the pod has volumes whose content follows the API.
func hasSyncedVolumes(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil || v.ConfigMap != nil || v.DownwardAPI != nil || v.Projected != nil {
			return true
		}
	}
	return false
}

func (m *Manager) setUp(ctx context.Context, st *podState, pod *corev1.Pod) error {
	if !st.files.written {
		// The hosts and termination message files (podfiles.go) go with the first volume
		// script, or alone when no volume needs one.
		m.planPodFiles(st, pod)
		defer m.writePlannedPodFiles(ctx, st)
	}
	var gid *int64
	if sc := pod.Spec.SecurityContext; sc != nil {
		gid = sc.FSGroup
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if err := m.setUpVolume(ctx, st, pod, v, gid); err != nil {
			return fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err)
		}
	}
	st.setUpAt = time.Now()
	return nil
}

func (m *Manager) setUpVolume(ctx context.Context, st *podState, pod *corev1.Pod, v *corev1.Volume, gid *int64) error {
	dir := m.volumeDir(pod, v.Name)
	switch {
	case v.EmptyDir != nil:
		return m.setUpEmptyDir(ctx, st, pod, v, dir, gid)
	case v.HostPath != nil:
		return m.checkHostPath(ctx, st, v)
	}
	files, err := m.volumeFiles(ctx, st, pod, v)
	if err != nil {
		return err
	}
	w := atomicWrite{volume: v.Name, dir: dir, files: files, tmpfs: v.Secret != nil || v.Projected != nil, gid: gid}
	return m.writeAtomic(ctx, st, pod, w)
}

func (m *Manager) setUpEmptyDir(ctx context.Context, st *podState, pod *corev1.Pod, v *corev1.Volume, dir string, gid *int64) error {
	if st.hashes[v.Name] == "ready" {
		return nil
	}
	cmd := "mkdir -p " + remote.Quote(dir)
	if v.EmptyDir.Medium == corev1.StorageMediumMemory {
		opts := "mode=0777"
		if v.EmptyDir.SizeLimit != nil && !v.EmptyDir.SizeLimit.IsZero() {
			opts += ",size=" + strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10)
		}
		cmd += fmt.Sprintf(" && { mountpoint -q %[1]s || mount -t tmpfs -o %[2]s tmpfs %[1]s; }", remote.Quote(dir), opts)
	}
	cmd += " && chmod 0777 " + remote.Quote(dir)
	if gid != nil {
		cmd += fmt.Sprintf(" && chgrp %d %s && chmod g+s %s", *gid, remote.Quote(dir), remote.Quote(dir))
	}
	if err := m.command(ctx, st, pod, cmd, nil); err != nil {
		return err
	}
	st.hashes[v.Name] = "ready"
	return nil
}

// command runs a volume's script on the host. The first one also creates the pod's 0700
// directory, which saves a round trip on the way to the pod's first container (the script
// that writes the pod's hosts file makes it too: podfiles.go), and carries the pod files'
// script when it is planned.
func (m *Manager) command(ctx context.Context, st *podState, pod *corev1.Pod, script string, stdin io.Reader) error {
	plan := st.filesPlan
	if plan != nil {
		st.filesPlan = nil
		script = withPodFiles(plan.script, script)
	}
	if !st.dirMade {
		dir := remote.Quote(m.podDir(pod))
		script = fmt.Sprintf("(umask 077 && mkdir -p %[1]s/volumes && chmod 0700 %[1]s) || exit 1; %s", dir, script)
	}
	out, err := m.host.Input(ctx, script, stdin)
	if plan != nil {
		if ok, why := podFilesWritten(out); ok {
			st.files = podFiles{written: true, next: plan.files}
		} else if err == nil {
			log.G(ctx).WithField("error", why).Warn("pod files not written; trying again when a container is created")
		}
	}
	if err != nil {
		return err
	}
	st.dirMade = true
	return nil
}

// checkHostPath checks the path's type as the kubelet does, creating it for the OrCreate
// types.
func (m *Manager) checkHostPath(ctx context.Context, st *podState, v *corev1.Volume) error {
	if st.hashes[v.Name] == "ready" {
		return nil
	}
	hp := v.HostPath
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	if t == corev1.HostPathUnset {
		st.hashes[v.Name] = "ready"
		return nil
	}
	cmd, what, err := hostPathCheck(hp.Path, t)
	if err != nil {
		return err
	}
	if _, err := m.host.Output(ctx, cmd); err != nil {
		var exit *remote.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("hostPath type check failed: %s is not %s", hp.Path, what)
		}
		return err
	}
	st.hashes[v.Name] = "ready"
	return nil
}

// hostPathCheck is the command that checks a hostPath's type (and makes it, for the
// OrCreate types), and what the type wants the path to be.
func hostPathCheck(p string, t corev1.HostPathType) (cmd, what string, err error) {
	q := remote.Quote(p)
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		return "test -d " + q + " || mkdir -p -m 0755 " + q, "a directory", nil
	case corev1.HostPathDirectory:
		return "test -d " + q, "a directory", nil
	case corev1.HostPathFileOrCreate:
		return "test -f " + q + " || { mkdir -p \"$(dirname " + q + ")\" && touch " + q + " && chmod 0644 " + q + "; }", "a file", nil
	case corev1.HostPathFile:
		return "test -f " + q, "a file", nil
	case corev1.HostPathSocket:
		return "test -S " + q, "a socket", nil
	case corev1.HostPathCharDev:
		return "test -c " + q, "a character device", nil
	case corev1.HostPathBlockDev:
		return "test -b " + q, "a block device", nil
	}
	return "", "", fmt.Errorf("hostPath type %q unknown", t)
}
