package volumes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// Besides its volumes, a pod's directory on the host holds the files the kubelet keeps in its
// own pod directory:
//
//	etc-hosts                     mounted at /etc/hosts in every container (makeHostsMount):
//	                              the host's /etc/hosts and the pod's hostAliases, as the
//	                              kubelet writes it for a hostNetwork pod (every pod shares the
//	                              host's network here)
//	containers/<name>/<random>    one empty file per container instance, mounted at its
//	                              terminationMessagePath (kuberuntime makeMounts)
//
// They go with the pod's directory when the pod is deleted. The hosts file and the first
// instance's termination files are written with the volumes, while the sandbox starts; each
// restart writes the hosts file again and a new termination file, as the kubelet does.

const (
	etcHosts = "/etc/hosts"
	// managedHostsHeader is the kubelet's first line for a hostNetwork pod's hosts file.
	managedHostsHeader = "# Kubernetes-managed hosts file (host network)."
)

// podFiles is what the manager knows of a pod's files above.
type podFiles struct {
	written bool              // the hosts file was written by this process
	next    map[string]string // by container name: an unused termination file for its next instance
}

// hostAliasEntries are the lines the kubelet appends for the pod's hostAliases
// (hostsEntriesFromHostAliases): a blank line, a comment, one tab-separated line per IP.
func hostAliasEntries(aliases []corev1.HostAlias) []byte {
	if len(aliases) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.Bytes()
}

// podFilesScript writes the pod's hosts file from the header, the host's hosts file and the
// alias entries, and creates the given termination files empty and writable by any user (the
// kubelet's 0666). The hosts file is rewritten in place, as the kubelet does, so containers
// already running see the new content. It reads nothing from standard input, so it can run
// ahead of a volume's script in the same session (withPodFiles).
func podFilesScript(podDir, hostsSource string, aliases []byte, termFiles []string) string {
	d := remote.Quote(podDir)
	var s strings.Builder
	fmt.Fprintf(&s, "set -e; umask 077; mkdir -p %[1]s; chmod 0700 %[1]s; ", d)
	fmt.Fprintf(&s, "{ printf '%%s\\n' %s; cat %s; printf '%%s' %s; } > %s/.etc-hosts.new; ",
		remote.Quote(managedHostsHeader), remote.Quote(hostsSource), remote.Quote(string(aliases)), d)
	fmt.Fprintf(&s, "cat %[1]s/.etc-hosts.new > %[1]s/etc-hosts; rm -f %[1]s/.etc-hosts.new; chmod 0644 %[1]s/etc-hosts", d)
	for _, f := range termFiles {
		q := remote.Quote(f)
		fmt.Fprintf(&s, "; mkdir -p %s; : > %s; chmod 0666 %s", remote.Quote(path.Dir(f)), q, q)
	}
	return s.String()
}

// writePodFiles writes the hosts file and a new termination file for each of the containers
// that has a terminationMessagePath; it returns the files by container name.
func (m *Manager) writePodFiles(ctx context.Context, pod *corev1.Pod, containers []*corev1.Container) (map[string]string, error) {
	plan, err := m.podFilesPlan(pod, containers)
	if err != nil {
		return nil, err
	}
	if _, err := m.host.Input(ctx, plan.script, nil); err != nil {
		return nil, fmt.Errorf("write the pod's hosts file and termination message files on the host: %w", err)
	}
	return plan.files, nil
}

// podFilesWrite is the script that writes a pod's files and the termination files it makes,
// by container name.
type podFilesWrite struct {
	script string
	files  map[string]string
}

func (m *Manager) podFilesPlan(pod *corev1.Pod, containers []*corev1.Container) (*podFilesWrite, error) {
	files := map[string]string{}
	var paths []string
	for _, c := range containers {
		if c.TerminationMessagePath == "" {
			continue
		}
		id := make([]byte, 4)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		f := path.Join(m.podDir(pod), "containers", c.Name, hex.EncodeToString(id))
		files[c.Name] = f
		paths = append(paths, f)
	}
	return &podFilesWrite{script: podFilesScript(m.podDir(pod), etcHosts, hostAliasEntries(pod.Spec.HostAliases), paths), files: files}, nil
}

// planPodFiles readies the writing of the pod's files for the first instance of every
// container, done by the pod's first volume script in the same SSH session (command),
// or alone by writePlannedPodFiles when the volumes need none: a session is what pods
// starting together queue for on the host.
func (m *Manager) planPodFiles(st *podState, pod *corev1.Pod) {
	var cs []*corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			cs = append(cs, &list[i])
		}
	}
	plan, err := m.podFilesPlan(pod, cs)
	if err != nil {
		return // written when a container is created
	}
	st.filesPlan = plan
}

// writePlannedPodFiles writes the planned pod files if no volume script took them. A failure
// is only logged, and the files are written again when a container is created, where a
// failure counts as the kubelet counts it.
func (m *Manager) writePlannedPodFiles(ctx context.Context, st *podState) {
	plan := st.filesPlan
	if plan == nil {
		return
	}
	st.filesPlan = nil
	if _, err := m.host.Input(ctx, plan.script, nil); err != nil {
		log.G(ctx).WithError(err).Warn("pod files not written; trying again when a container is created")
		return
	}
	st.files = podFiles{written: true, next: plan.files}
}

// podFilesDone is what withPodFiles prints when the pod's files were written.
const podFilesDone = "satellite: pod files written"

// withPodFiles runs the pod files' script ahead of another script, in a subshell that reads
// nothing from standard input (the other script's), whose failure does not stop the other:
// it prints podFilesDone, or what failed.
func withPodFiles(podFiles, script string) string {
	return fmt.Sprintf("if podfiles_out=$( (%s) </dev/null 2>&1); then echo %s; else printf 'pod files: %%s\\n' \"$podfiles_out\"; fi; %s",
		podFiles, remote.Quote(podFilesDone), script)
}

// podFilesWritten reads withPodFiles' report from the script's output: whether the files
// were written, and if not, why.
func podFilesWritten(out []byte) (bool, string) {
	for _, line := range strings.Split(string(out), "\n") {
		if line == podFilesDone {
			return true, ""
		}
	}
	if _, msg, ok := strings.Cut(string(out), "pod files: "); ok {
		return false, strings.TrimSpace(msg)
	}
	return false, "no report from the script"
}

// FileMounts are the container's mounts of the pod's hosts file and of a termination message
// file not used before, written on the host first when need be (the kubelet's makeMounts and
// makeHostsMount). Each call is for a new instance of the container.
func (m *Manager) FileMounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]*runtimeapi.Mount, error) {
	st := m.pod(pod.UID)
	file, fresh := st.files.next[c.Name]
	if !st.files.written || (!fresh && c.TerminationMessagePath != "") {
		files, err := m.writePodFiles(ctx, pod, []*corev1.Container{c})
		if err != nil {
			return nil, err
		}
		st.files.written, file = true, files[c.Name]
	}
	delete(st.files.next, c.Name) // an instance's file is never handed to the next one
	var mounts []*runtimeapi.Mount
	if !mountsAt(c, etcHosts) {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: etcHosts, HostPath: path.Join(m.podDir(pod), "etc-hosts")})
	}
	if file != "" {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: file})
	}
	return mounts, nil
}

// mountsAt reports whether one of the container's volumes is mounted at the path, which then
// takes the place of the kubelet's own file there.
func mountsAt(c *corev1.Container, p string) bool {
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) == p {
			return true
		}
	}
	return false
}
