package volumes

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// Mounts are the CRI mounts of the container's volumeMounts, their subPaths (subPathExpr
// expanded with vars, the container's environment) bound on the host first, as the kubelet's
// makeMounts does.
func (m *Manager) Mounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vars map[string]string) ([]*runtimeapi.Mount, error) {
	mounts, binds, err := m.containerMounts(pod, c, vars)
	if err != nil {
		return nil, err
	}
	if err := m.bindSubPaths(ctx, c, binds); err != nil {
		return nil, err
	}
	return mounts, nil
}

// containerMounts are the CRI mounts of a container's volumeMounts, and the subPaths to bind
// on the host first (subpaths.go): a subPath's mount takes its source from the bind.
func (m *Manager) containerMounts(pod *corev1.Pod, c *corev1.Container, vars map[string]string) ([]*runtimeapi.Mount, []subPathBind, error) {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var mounts []*runtimeapi.Mount
	var binds []subPathBind
	for i, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, nil, fmt.Errorf("volumeMount %q: no such volume", vm.Name)
		}
		src := m.volumeDir(pod, v.Name)
		readOnly := vm.ReadOnly
		switch {
		case v.HostPath != nil:
			src = v.HostPath.Path
		case v.EmptyDir == nil:
			readOnly = true // secret, configMap, downward API and projected volumes are read-only
		}
		sub, err := subPathOf(vm, vars)
		if err != nil {
			return nil, nil, err
		}
		if sub != "" {
			target := path.Join(m.podDir(pod), "volume-subpaths", v.Name, c.Name, strconv.Itoa(i))
			binds = append(binds, subPathBind{mount: vm.Name, volume: src, sub: sub, target: target})
			src = target
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: src, Readonly: readOnly, Propagation: propagation(vm)})
	}
	return mounts, binds, nil
}

// propagation is the CRI's name for the volumeMount's mountPropagation (None: private).
func propagation(vm corev1.VolumeMount) runtimeapi.MountPropagation {
	if vm.MountPropagation != nil {
		switch *vm.MountPropagation {
		case corev1.MountPropagationHostToContainer:
			return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		case corev1.MountPropagationBidirectional:
			return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
		}
	}
	return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
}

// Remove unmounts and deletes the pod's directory on the host: its volumes and files.
func (m *Manager) Remove(ctx context.Context, pod *corev1.Pod) error {
	return m.RemoveDir(ctx, m.podDir(pod))
}

// RemoveDir unmounts and deletes a pod directory on the host (one the manager's Config.PodDir
// holds, such as a pod's that no longer exists), refusing any other path.
func (m *Manager) RemoveDir(ctx context.Context, dir string) error {
	clean := path.Clean(dir)
	root := path.Clean(m.root)
	if !strings.HasPrefix(clean, root+"/") || strings.Contains(strings.TrimPrefix(clean, root+"/"), "/") {
		return fmt.Errorf("refusing to remove %q: not a pod directory under %s", dir, root)
	}
	q := remote.Quote(clean)
	// Mounts below the directory first (deepest first), then the files, never crossing into
	// a filesystem still mounted.
	cmd := fmt.Sprintf("[ -e %[1]s ] || exit 0; awk -v d=%[1]s/ 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount \"$m\" || umount -l \"$m\"; done; rm -rf --one-file-system %[1]s", q)
	if _, err := m.host.Output(ctx, cmd); err != nil {
		return fmt.Errorf("remove the pod's volumes from the host: %w", err)
	}
	return nil
}
