package volumes

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/remote"
)

// A volumeMount's subPath is mounted as the kubelet mounts it (pkg/volume/util/subpath): the
// satellite-subpath helper, run on the host, resolves it inside its volume without following
// a symlink out of it and bind-mounts it under the pod's volume-subpaths directory, which
// containerd then mounts into the container (remote/subpath says how). Handing containerd
// <volume>/<subPath> itself would let a container that planted a symlink there mount any
// path of the host.

// HelperSource returns the satellite-subpath helper built for linux and a GOARCH.
type HelperSource func(goarch string) ([]byte, error)

// subPathBind is one subPath mount of a container, to be bound before the container is created.
type subPathBind struct {
	mount  string // the volumeMount's name
	volume string // the volume's directory on the host
	sub    string
	target string // <pod dir>/volume-subpaths/<volume>/<container>/<index>
}

// subPathOf is the volumeMount's subPath, subPathExpr expanded with the container's
// environment, checked as the kubelet checks it (kubelet_pods.go makeMounts).
func subPathOf(vm corev1.VolumeMount, vars map[string]string) (string, error) {
	sub := vm.SubPath
	if vm.SubPathExpr != "" {
		missing := map[string]bool{}
		sub = kubecontainer.Expand(vm.SubPathExpr, func(k string) (string, bool) {
			if v := vars[k]; v != "" {
				return v, true
			}
			missing[k] = true
			return "", true
		})
		if len(missing) > 0 {
			return "", fmt.Errorf("missing value for %s", strings.Join(slices.Sorted(maps.Keys(missing)), ", "))
		}
	}
	if sub == "" {
		return "", nil
	}
	if strings.HasPrefix(sub, "/") {
		return "", fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
	}
	for _, part := range strings.Split(sub, "/") {
		if part == ".." {
			return "", fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", sub)
		}
	}
	return sub, nil
}

// bindSubPaths binds the container's subPaths on the host in one command. A refusal is
// worded as the kubelet words it, without the host's paths; the detail goes to the log.
func (m *Manager) bindSubPaths(ctx context.Context, c *corev1.Container, binds []subPathBind) error {
	if len(binds) == 0 {
		return nil
	}
	var args strings.Builder
	args.WriteString(" bind")
	for _, b := range binds {
		for _, a := range []string{b.volume, b.sub, b.target} {
			args.WriteString(" " + remote.Quote(a))
		}
	}
	installErr, err := m.runHelper(ctx, args.String())
	if installErr != nil {
		return fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q: %w", binds[0].mount, c.Name, installErr)
	}
	var exit *remote.ExitError
	if err == nil || !errors.As(err, &exit) || exit.Code != 1 {
		return err
	}
	i, kind, detail := parseHelperError(exit.Stderr)
	if i < 0 || i >= len(binds) {
		return fmt.Errorf("failed to prepare subPath for container %q: %w", c.Name, err)
	}
	log.G(ctx).WithField("container", c.Name).WithField("volumeMount", binds[i].mount).WithField("error", detail).Warn("subPath refused")
	if kind == "mkdir" {
		return fmt.Errorf("failed to create subPath directory for volumeMount %q of container %q", binds[i].mount, c.Name)
	}
	return fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q", binds[i].mount, c.Name)
}

// runHelper runs the helper on the host with args, installing it first, and once more when
// the host says it is gone or not executable (exit 126 or 127). It returns why the helper
// could not be installed, or else how its run ended.
func (m *Manager) runHelper(ctx context.Context, args string) (installErr, runErr error) {
	for try := 0; ; try++ {
		helper, err := m.helper.installed(ctx)
		if err != nil {
			return err, nil
		}
		_, err = m.host.Output(ctx, remote.Quote(helper)+args)
		var exit *remote.ExitError
		if try > 0 || !errors.As(err, &exit) || (exit.Code != 126 && exit.Code != 127) {
			return nil, err
		}
		m.helper.forget()
	}
}

// parseHelperError reads the helper's "<index> <kind> <detail>" line.
func parseHelperError(stderr string) (int, string, string) {
	parts := strings.SplitN(strings.TrimSpace(stderr), " ", 3)
	if len(parts) < 3 {
		return -1, "", stderr
	}
	i, err := strconv.Atoi(parts[0])
	if err != nil {
		return -1, "", stderr
	}
	return i, parts[1], parts[2]
}

// subPathHelper puts the satellite-subpath helper on the host once, named by its SHA-256 in
// a root-only directory, and checks what the host holds against that hash before use.
type subPathHelper struct {
	host   Host
	dir    string
	source HelperSource

	mu   sync.Mutex
	path string // the checked helper on the host; "" until then
}

// installed returns the helper's path on the host, copying it there when it is missing or
// differs from the one Satellite has for the host's architecture.
func (s *subPathHelper) installed(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path != "" {
		return s.path, nil
	}
	if s.source == nil {
		return "", errors.New("the satellite-subpath helper is not available to this Satellite (--subpath-helper-dir)")
	}
	out, err := s.host.Output(ctx, "uname -m")
	if err != nil {
		return "", fmt.Errorf("host architecture: %w", err)
	}
	arch := remote.GoArch(strings.TrimSpace(string(out)))
	data, err := s.source(arch)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	p := path.Join(s.dir, "satellite-subpath-"+hex.EncodeToString(sum[:12]))
	if s.matches(ctx, p, sum) {
		s.path = p
		return p, nil
	}
	if err := s.host.MkdirAll(ctx, s.dir, 0o700); err != nil {
		return "", err
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	tmp := p + ".tmp-" + hex.EncodeToString(nonce[:])
	if err := s.host.WriteFile(ctx, tmp, data, 0o700); err != nil {
		return "", fmt.Errorf("copy the satellite-subpath helper to the host: %w", err)
	}
	if !s.matches(ctx, tmp, sum) {
		_ = s.host.Remove(ctx, tmp)
		return "", fmt.Errorf("the satellite-subpath helper copied to %s does not match its SHA-256", tmp)
	}
	if err := s.host.Rename(ctx, tmp, p); err != nil {
		return "", err
	}
	log.G(ctx).WithField("path", p).WithField("arch", arch).Info("installed the satellite-subpath helper on the host")
	s.path = p
	return p, nil
}

// matches says whether the file at p on the host hashes to sum.
func (s *subPathHelper) matches(ctx context.Context, p string, sum [32]byte) bool {
	f, err := s.host.Open(ctx, p)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return false
	}
	return bytes.Equal(h.Sum(nil), sum[:])
}

// forget makes the next use check the helper on the host again.
func (s *subPathHelper) forget() {
	s.mu.Lock()
	s.path = ""
	s.mu.Unlock()
}
