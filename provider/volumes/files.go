package volumes

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
)

// Secret, configMap and downward API files default to mode 0644, as with the kubelet.
const defaultMode = 0o644

// volumeFile is one file of an atomically written volume.
type volumeFile struct {
	data []byte
	mode int64
}

// volumeFiles computes the content of a secret, configMap, downward API or projected volume.
func (m *Manager) volumeFiles(ctx context.Context, st *podState, pod *corev1.Pod, v *corev1.Volume) (map[string]volumeFile, error) {
	files := map[string]volumeFile{}
	s := v.VolumeSource
	switch {
	case s.Secret != nil:
		return files, m.secretFiles(ctx, files, pod.Namespace, s.Secret.SecretName, s.Secret.Items, s.Secret.DefaultMode, s.Secret.Optional)
	case s.ConfigMap != nil:
		return files, m.configMapFiles(ctx, files, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.DefaultMode, s.ConfigMap.Optional)
	case s.DownwardAPI != nil:
		return files, downwardFiles(files, pod, s.DownwardAPI.Items, s.DownwardAPI.DefaultMode, m.allocatable())
	case s.Projected != nil:
		for _, src := range s.Projected.Sources {
			if err := m.projectedFiles(ctx, st, files, pod, v.Name, src, s.Projected.DefaultMode); err != nil {
				return nil, err
			}
		}
		return files, nil
	}
	return nil, errors.New("not a file volume")
}

// projectedFiles adds one source of a projected volume to its files.
func (m *Manager) projectedFiles(ctx context.Context, st *podState, files map[string]volumeFile, pod *corev1.Pod, volume string, src corev1.VolumeProjection, defMode *int32) error {
	switch {
	case src.Secret != nil:
		return m.secretFiles(ctx, files, pod.Namespace, src.Secret.Name, src.Secret.Items, defMode, src.Secret.Optional)
	case src.ConfigMap != nil:
		return m.configMapFiles(ctx, files, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, defMode, src.ConfigMap.Optional)
	case src.DownwardAPI != nil:
		return downwardFiles(files, pod, src.DownwardAPI.Items, defMode, m.allocatable())
	case src.ServiceAccountToken != nil:
		tok, err := m.token(ctx, st, pod, volume, src.ServiceAccountToken)
		files[src.ServiceAccountToken.Path] = volumeFile{data: []byte(tok), mode: modeOr(defMode)}
		return err
	}
	return errors.New("projected source not supported on Satellite nodes (clusterTrustBundle, podCertificate)")
}

func modeOr(m *int32) int64 {
	if m != nil {
		return int64(*m)
	}
	return defaultMode
}

func itemFiles(files map[string]volumeFile, kind, name string, data map[string][]byte, items []corev1.KeyToPath, defMode *int32, optional bool) error {
	if len(items) == 0 {
		for k, d := range data {
			files[k] = volumeFile{data: d, mode: modeOr(defMode)}
		}
		return nil
	}
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("configuration error: %s %q has no key %q", kind, name, it.Key)
		}
		mode := modeOr(defMode)
		if it.Mode != nil {
			mode = int64(*it.Mode)
		}
		files[it.Path] = volumeFile{data: d, mode: mode}
	}
	return nil
}

func (m *Manager) secretFiles(ctx context.Context, files map[string]volumeFile, ns, name string, items []corev1.KeyToPath, defMode *int32, optional *bool) error {
	if m.objects == nil {
		return errors.New("no access to Secrets")
	}
	s, err := m.objects.Secret(ctx, ns, name)
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("secret %q not found", name)
		}
		return err
	}
	return itemFiles(files, "secret", name, s.Data, items, defMode, optional != nil && *optional)
}

func (m *Manager) configMapFiles(ctx context.Context, files map[string]volumeFile, ns, name string, items []corev1.KeyToPath, defMode *int32, optional *bool) error {
	if m.objects == nil {
		return errors.New("no access to ConfigMaps")
	}
	cm, err := m.objects.ConfigMap(ctx, ns, name)
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("configmap %q not found", name)
		}
		return err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return itemFiles(files, "configmap", name, data, items, defMode, optional != nil && *optional)
}

// downwardFiles resolves downward API items: metadata fields and container resources (unset
// limits read as the node's allocatable).
func downwardFiles(files map[string]volumeFile, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defMode *int32, allocatable corev1.ResourceList) error {
	for _, it := range items {
		var val string
		switch {
		case it.FieldRef != nil:
			v, err := kuberuntime.PodField(pod, it.FieldRef.FieldPath)
			if err != nil {
				return err
			}
			val = v
		case it.ResourceFieldRef != nil:
			v, err := kuberuntime.ContainerResource(pod, nil, it.ResourceFieldRef, allocatable)
			if err != nil {
				return err
			}
			val = v
		}
		mode := modeOr(defMode)
		if it.Mode != nil {
			mode = int64(*it.Mode)
		}
		files[it.Path] = volumeFile{data: []byte(val), mode: mode}
	}
	return nil
}
