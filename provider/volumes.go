package provider

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// Volumes live on the host under Config.PodDir, one 0700 directory per pod named like its log
// directory (<namespace>_<name>_<uid>), removed with the pod. Secret and projected volumes
// and memory-backed emptyDirs are tmpfs mounts, so their content never reaches the host's
// disk. Content is written the way the kubelet's atomic writer does: a timestamped directory,
// a ..data symlink swapped to it with rename(2), and one symlink per top-level entry into
// ..data, so a container never sees a half-written update.

// volumeResync is how often configMap, secret, downward API and projected volumes are
// brought up to date: with Secrets and ConfigMaps read at most 15 s old (cmd/satellite's
// object cache), a change reaches a running pod within a minute, as with the kubelet's
// one-minute sync period.
const volumeResync = 45 * time.Second

// Secret, configMap and downward API files default to mode 0644, as with the kubelet.
const defaultVolumeMode = 0o644

func (p *Provider) podDir(pod *corev1.Pod) string {
	return path.Join(p.cfg.PodDir, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

func (p *Provider) volumeDir(pod *corev1.Pod, name string) string {
	return path.Join(p.podDir(pod), "volumes", name)
}

// volumeFile is one file of an atomically written volume.
type volumeFile struct {
	data []byte
	mode int64
}

// setupVolumes makes every volume of the pod ready on the host; it is idempotent and cheap
// when nothing changed (content is compared by hash). It returns the first failure as the
// kubelet words it for a FailedMount event.
func (p *Provider) setupVolumes(ctx context.Context, rec *podRecord, pod *corev1.Pod) error {
	if rec.volumeHash == nil {
		rec.volumeHash = map[string]string{}
	}
	if !rec.files.written {
		// The hosts and termination message files (podfiles.go) go with the first volume
		// script, or alone when no volume needs one.
		p.planPodFiles(rec, pod)
		defer p.writePlannedPodFiles(ctx, rec)
	}
	var gid *int64
	if sc := pod.Spec.SecurityContext; sc != nil {
		gid = sc.FSGroup
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		dir := p.volumeDir(pod, v.Name)
		var err error
		switch {
		case v.EmptyDir != nil:
			err = p.setupEmptyDir(ctx, rec, pod, v, dir, gid)
		case v.HostPath != nil:
			err = p.checkHostPath(ctx, rec, v)
		default:
			var files map[string]volumeFile
			files, err = p.volumeFiles(ctx, rec, pod, v)
			if err == nil {
				tmpfs := v.Secret != nil || v.Projected != nil
				err = p.writeAtomic(ctx, rec, pod, v.Name, dir, files, tmpfs, gid)
			}
		}
		if err != nil {
			return fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err)
		}
	}
	rec.volumesAt = time.Now()
	return nil
}

func (p *Provider) setupEmptyDir(ctx context.Context, rec *podRecord, pod *corev1.Pod, v *corev1.Volume, dir string, gid *int64) error {
	if rec.volumeHash[v.Name] == "ready" {
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
	if err := p.volumeCommand(ctx, rec, pod, cmd, nil); err != nil {
		return err
	}
	rec.volumeHash[v.Name] = "ready"
	return nil
}

// volumeCommand runs a volume's script on the host. The first one also creates the pod's
// 0700 directory, which saves a round trip on the way to the pod's first container (the
// script that writes the pod's hosts file makes it too: podfiles.go).
func (p *Provider) volumeCommand(ctx context.Context, rec *podRecord, pod *corev1.Pod, script string, stdin io.Reader) error {
	plan := rec.filesPlan
	if plan != nil {
		rec.filesPlan = nil
		script = withPodFiles(plan.script, script)
	}
	if !rec.podDirMade {
		dir := remote.Quote(p.podDir(pod))
		script = fmt.Sprintf("(umask 077 && mkdir -p %[1]s/volumes && chmod 0700 %[1]s) || exit 1; %s", dir, script)
	}
	out, err := p.host.Input(ctx, script, stdin)
	if plan != nil {
		if ok, why := podFilesWritten(out); ok {
			rec.files = podFiles{written: true, next: plan.files}
		} else if err == nil {
			log.G(ctx).WithField("error", why).Warn("pod files not written; trying again when a container is created")
		}
	}
	if err != nil {
		return err
	}
	rec.podDirMade = true
	return nil
}

// checkHostPath checks the path's type as the kubelet does, creating it for the OrCreate
// types.
func (p *Provider) checkHostPath(ctx context.Context, rec *podRecord, v *corev1.Volume) error {
	if rec.volumeHash[v.Name] == "ready" {
		return nil
	}
	hp := v.HostPath
	q := remote.Quote(hp.Path)
	var cmd, what string
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	switch t {
	case corev1.HostPathUnset:
		rec.volumeHash[v.Name] = "ready"
		return nil
	case corev1.HostPathDirectoryOrCreate:
		cmd, what = "test -d "+q+" || mkdir -p -m 0755 "+q, "a directory"
	case corev1.HostPathDirectory:
		cmd, what = "test -d "+q, "a directory"
	case corev1.HostPathFileOrCreate:
		cmd, what = "test -f "+q+" || { mkdir -p \"$(dirname "+q+")\" && touch "+q+" && chmod 0644 "+q+"; }", "a file"
	case corev1.HostPathFile:
		cmd, what = "test -f "+q, "a file"
	case corev1.HostPathSocket:
		cmd, what = "test -S "+q, "a socket"
	case corev1.HostPathCharDev:
		cmd, what = "test -c "+q, "a character device"
	case corev1.HostPathBlockDev:
		cmd, what = "test -b "+q, "a block device"
	default:
		return fmt.Errorf("hostPath type %q unknown", t)
	}
	if _, err := p.host.Output(ctx, cmd); err != nil {
		var exit *remote.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("hostPath type check failed: %s is not %s", hp.Path, what)
		}
		return err
	}
	rec.volumeHash[v.Name] = "ready"
	return nil
}

// volumeFiles computes the content of a secret, configMap, downward API or projected volume.
func (p *Provider) volumeFiles(ctx context.Context, rec *podRecord, pod *corev1.Pod, v *corev1.Volume) (map[string]volumeFile, error) {
	files := map[string]volumeFile{}
	s := v.VolumeSource
	switch {
	case s.Secret != nil:
		return files, p.secretFiles(ctx, files, pod.Namespace, s.Secret.SecretName, s.Secret.Items, s.Secret.DefaultMode, s.Secret.Optional)
	case s.ConfigMap != nil:
		return files, p.configMapFiles(ctx, files, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.DefaultMode, s.ConfigMap.Optional)
	case s.DownwardAPI != nil:
		return files, downwardFiles(files, pod, s.DownwardAPI.Items, s.DownwardAPI.DefaultMode, p.node.Allocatable())
	case s.Projected != nil:
		for _, src := range s.Projected.Sources {
			var err error
			switch {
			case src.Secret != nil:
				err = p.secretFiles(ctx, files, pod.Namespace, src.Secret.Name, src.Secret.Items, s.Projected.DefaultMode, src.Secret.Optional)
			case src.ConfigMap != nil:
				err = p.configMapFiles(ctx, files, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, s.Projected.DefaultMode, src.ConfigMap.Optional)
			case src.DownwardAPI != nil:
				err = downwardFiles(files, pod, src.DownwardAPI.Items, s.Projected.DefaultMode, p.node.Allocatable())
			case src.ServiceAccountToken != nil:
				var tok string
				tok, err = p.token(ctx, rec, pod, v.Name, src.ServiceAccountToken)
				files[src.ServiceAccountToken.Path] = volumeFile{data: []byte(tok), mode: modeOr(s.Projected.DefaultMode)}
			default:
				err = errors.New("projected source not supported on Satellite nodes (clusterTrustBundle, podCertificate)")
			}
			if err != nil {
				return nil, err
			}
		}
		return files, nil
	}
	return nil, errors.New("not a file volume")
}

func modeOr(m *int32) int64 {
	if m != nil {
		return int64(*m)
	}
	return defaultVolumeMode
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

func (p *Provider) secretFiles(ctx context.Context, files map[string]volumeFile, ns, name string, items []corev1.KeyToPath, defMode *int32, optional *bool) error {
	if p.objects == nil {
		return errors.New("no access to Secrets")
	}
	s, err := p.objects.Secret(ctx, ns, name)
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

func (p *Provider) configMapFiles(ctx context.Context, files map[string]volumeFile, ns, name string, items []corev1.KeyToPath, defMode *int32, optional *bool) error {
	if p.objects == nil {
		return errors.New("no access to ConfigMaps")
	}
	cm, err := p.objects.ConfigMap(ctx, ns, name)
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

// token returns a service account token for the projection, from the TokenRequest API, bound
// to the pod; it is requested again once 80 % of its lifetime (at most 24 h) has passed.
func (p *Provider) token(ctx context.Context, rec *podRecord, pod *corev1.Pod, volume string, proj *corev1.ServiceAccountTokenProjection) (string, error) {
	key := volume + "/" + proj.Path
	if t, ok := rec.tokens[key]; ok && time.Now().Before(t.refreshAt) {
		return t.token, nil
	}
	if p.cfg.Tokens == nil {
		return "", errors.New("no access to the TokenRequest API")
	}
	exp := int64(3600)
	if proj.ExpirationSeconds != nil {
		exp = *proj.ExpirationSeconds
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if proj.Audience != "" {
		tr.Spec.Audiences = []string{proj.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	issued := time.Now()
	resp, err := p.cfg.Tokens.CreateToken(ctx, pod.Namespace, sa, tr)
	if err != nil {
		return "", fmt.Errorf("failed to fetch token: %w", err)
	}
	life := resp.Status.ExpirationTimestamp.Sub(issued)
	refresh := life * 8 / 10
	if refresh > 24*time.Hour {
		refresh = 24 * time.Hour
	}
	if rec.tokens == nil {
		rec.tokens = map[string]issuedToken{}
	}
	rec.tokens[key] = issuedToken{token: resp.Status.Token, refreshAt: issued.Add(refresh), expires: resp.Status.ExpirationTimestamp.Time}
	return resp.Status.Token, nil
}

type issuedToken struct {
	token     string
	refreshAt time.Time
	expires   time.Time
}

// writeAtomic writes files into dir the atomic writer's way, only when they changed. The
// content travels as a tar stream on the command's standard input: never in a command line.
func (p *Provider) writeAtomic(ctx context.Context, rec *podRecord, pod *corev1.Pod, name, dir string, files map[string]volumeFile, tmpfs bool, gid *int64) error {
	paths := make([]string, 0, len(files))
	for fp := range files {
		if err := validPath(fp); err != nil {
			return err
		}
		paths = append(paths, fp)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, fp := range paths {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", fp, files[fp].mode, len(files[fp].data))
		h.Write(files[fp].data)
	}
	if gid != nil {
		fmt.Fprintf(h, "gid=%d", *gid)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if rec.volumeHash[name] == sum {
		return nil
	}
	ts := "..sat_" + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	group := 0
	if gid != nil {
		group = int(*gid)
	}
	dirs := map[string]bool{}
	top := map[string]bool{}
	mtime := time.Now()
	for _, fp := range paths {
		top[strings.Split(fp, "/")[0]] = true
		parts := strings.Split(fp, "/")
		for i := 1; i < len(parts); i++ {
			d := ts + "/" + strings.Join(parts[:i], "/")
			if !dirs[d] {
				dirs[d] = true
				_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, Gid: group, ModTime: mtime})
			}
		}
		f := files[fp]
		mode := f.mode
		if gid != nil {
			mode |= 0o040 // readable by the pod's fsGroup
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ts + "/" + fp, Mode: mode, Size: int64(len(f.data)), Gid: group, ModTime: mtime}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: ts + "/", Mode: 0o755, Gid: group, ModTime: mtime})
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "..data_tmp", Linkname: ts, ModTime: mtime})
	keep := []string{}
	for t := range top {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: t, Linkname: "..data/" + t, ModTime: mtime})
		keep = append(keep, t)
	}
	sort.Strings(keep)
	if err := tw.Close(); err != nil {
		return err
	}
	q := remote.Quote(dir)
	var script strings.Builder
	script.WriteString("set -e; umask 077; mkdir -p " + q + "; ")
	if tmpfs {
		script.WriteString("mountpoint -q " + q + " || mount -t tmpfs -o mode=0755 tmpfs " + q + "; ")
	}
	script.WriteString("cd " + q + " && tar -x --no-overwrite-dir -f - && mv -T ..data_tmp ..data; ")
	// Drop older generations and entries no longer in the volume.
	script.WriteString("for f in ..sat_*; do [ \"$f\" = " + remote.Quote(ts) + " ] || rm -rf -- \"$f\"; done; ")
	script.WriteString("for f in * .[!.]*; do [ -e \"$f\" ] || [ -L \"$f\" ] || continue; case \"$f\" in ")
	for _, k := range keep {
		script.WriteString(remote.Quote(k) + ") ;; ")
	}
	script.WriteString("*) rm -rf -- \"$f\";; esac; done")
	if err := p.volumeCommand(ctx, rec, pod, script.String(), &buf); err != nil {
		return fmt.Errorf("write the volume on the host: %w", err)
	}
	rec.volumeHash[name] = sum
	return nil
}

// validPath refuses item paths that would leave the volume, as the API server does.
func validPath(fp string) error {
	if fp == "" || strings.HasPrefix(fp, "/") || strings.HasPrefix(fp, "..") {
		return fmt.Errorf("invalid path %q", fp)
	}
	for _, part := range strings.Split(fp, "/") {
		if part == ".." || part == "" {
			return fmt.Errorf("invalid path %q", fp)
		}
	}
	return nil
}

// containerMounts are the CRI mounts of a container's volumeMounts, and the subPaths to bind
// on the host first (subpaths.go): a subPath's mount takes its source from the bind.
func (p *Provider) containerMounts(pod *corev1.Pod, c *corev1.Container, vars map[string]string) ([]*runtimeapi.Mount, []subPathBind, error) {
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
		src := p.volumeDir(pod, v.Name)
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
			target := path.Join(p.podDir(pod), "volume-subpaths", v.Name, c.Name, strconv.Itoa(i))
			binds = append(binds, subPathBind{mount: vm.Name, volume: src, sub: sub, target: target})
			src = target
		}
		m := &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: src, Readonly: readOnly}
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case corev1.MountPropagationHostToContainer:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case corev1.MountPropagationBidirectional:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		mounts = append(mounts, m)
	}
	return mounts, binds, nil
}

// removePodDir unmounts and deletes a pod's directory on the host, refusing any path outside
// the pod directory root.
func (p *Provider) removePodDir(ctx context.Context, dir string) error {
	clean := path.Clean(dir)
	root := path.Clean(p.cfg.PodDir)
	if !strings.HasPrefix(clean, root+"/") || strings.Contains(strings.TrimPrefix(clean, root+"/"), "/") {
		return fmt.Errorf("refusing to remove %q: not a pod directory under %s", dir, root)
	}
	q := remote.Quote(clean)
	// Mounts below the directory first (deepest first), then the files, never crossing into
	// a filesystem still mounted.
	cmd := fmt.Sprintf("[ -e %[1]s ] || exit 0; awk -v d=%[1]s/ 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount \"$m\" || umount -l \"$m\"; done; rm -rf --one-file-system %[1]s", q)
	if _, err := p.host.Output(ctx, cmd); err != nil {
		return fmt.Errorf("remove the pod's volumes from the host: %w", err)
	}
	return nil
}
