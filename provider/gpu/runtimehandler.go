package gpu

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's sandbox runs with a CRI runtime handler (RunPodSandboxRequest.RuntimeHandler): the
// name of one of containerd's runtimes (containerd.runtimes.<name> in its CRI configuration),
// "" for its default runtime, and the sandbox's containers run with the same one. As with the
// kubelet (pkg/kubelet/runtimeclass), a pod's runtimeClassName names the RuntimeClass whose
// handler it is. Satellite adds one rule: when GPUs are given by NVIDIA_VISIBLE_DEVICES (env
// mode), a pod without a runtimeClassName that asks for nvidia.com/gpu runs with
// Config.RuntimeHandler: the runtime that `nvidia-ctk runtime configure
// --runtime=containerd` adds as "nvidia", whose nvidia-container-runtime reads the variable.
// Its containers without GPUs get NVIDIA_VISIBLE_DEVICES=void there (apply), and every
// other pod keeps containerd's default runtime.

// RuntimeClassGetter reads RuntimeClasses (node.k8s.io/v1) by name; client-go's
// NodeV1().RuntimeClasses() is one.
type RuntimeClassGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*nodev1.RuntimeClass, error)
}

// runtimeClassTimeout bounds the look-up of a pod's RuntimeClass.
const runtimeClassTimeout = 10 * time.Second

// Handler is the runtime handler a pod's sandbox runs with, and where it came from.
type Handler struct {
	Name         string // "": containerd's default runtime
	RuntimeClass string // the pod's runtimeClassName, when the handler is its RuntimeClass's
}

// podWantsGPUs reports whether a container or init container of the pod asks for GPUs.
func podWantsGPUs(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if request(&cs[i]) > 0 {
				return true
			}
		}
	}
	return false
}

// defaultHandler is the handler of a pod without a runtimeClassName: gpuHandler in env mode
// when the pod asks for GPUs, else containerd's default ("").
func defaultHandler(pod *corev1.Pod, mode Mode, gpuHandler string) string {
	if mode == ModeEnv && podWantsGPUs(pod) {
		return gpuHandler
	}
	return ""
}

// RuntimeHandler is the handler for the pod's sandbox. A RuntimeClass that cannot be read is
// an error in the kubelet's words: the API's NotFound as it is, else "failed to lookup
// RuntimeClass NAME: ...".
func (m *Manager) RuntimeHandler(ctx context.Context, pod *corev1.Pod) (Handler, error) {
	name := pod.Spec.RuntimeClassName
	if name == nil || *name == "" {
		return Handler{Name: defaultHandler(pod, m.Mode(), m.cfg.RuntimeHandler)}, nil
	}
	if m.cfg.RuntimeClasses == nil {
		return Handler{}, fmt.Errorf("failed to lookup RuntimeClass %s: Satellite has no access to RuntimeClasses", *name)
	}
	ctx, cancel := context.WithTimeout(ctx, runtimeClassTimeout)
	defer cancel()
	rc, err := m.cfg.RuntimeClasses.Get(ctx, *name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Handler{}, err
	case err != nil:
		return Handler{}, fmt.Errorf("failed to lookup RuntimeClass %s: %w", *name, err)
	}
	return Handler{Name: rc.Handler, RuntimeClass: *name}, nil
}

// missingHandler is containerd refusing a sandbox whose handler is none of its runtimes.
type missingHandler struct {
	handler Handler
	have    []string // containerd's runtimes
	err     error    // containerd's own error
}

func (e *missingHandler) Error() string {
	h := e.handler
	have := "none"
	if len(e.have) > 0 {
		have = strings.Join(e.have, ", ")
	}
	if h.RuntimeClass != "" {
		return fmt.Sprintf("the host's containerd has no runtime handler %q, which RuntimeClass %q names (its runtimes: %s): %v",
			h.Name, h.RuntimeClass, have, e.err)
	}
	return fmt.Sprintf("the host's containerd has no runtime handler %q, which --gpu-runtime-handler names for pods that ask for %s (its runtimes: %s); "+
		"on the host run `sudo nvidia-ctk runtime configure --runtime=containerd` and restart containerd, "+
		"or set --gpu-runtime-handler (chart: gpu.runtimeHandler) to one of its runtimes, or to \"\" for its default one: %v",
		h.Name, ResourceName, have, e.err)
}

func (e *missingHandler) Unwrap() error { return e.err }

// SandboxError says which setting named the handler when containerd refused a sandbox for
// want of it. containerd's refusal ("no runtime for "nvidia" is configured", GetSandboxRuntime)
// is a plain error without a code of its own, so the handler is looked for among the runtimes
// its configuration lists instead. Any other error is returned as it is.
func (m *Manager) SandboxError(ctx context.Context, h Handler, err error) error {
	if h.Name == "" {
		return err
	}
	cfg, cerr := m.readCRIConfig(ctx)
	if cerr != nil || len(cfg.Containerd.Runtimes) == 0 {
		return err
	}
	if _, ok := cfg.Containerd.Runtimes[h.Name]; ok {
		return err
	}
	return &missingHandler{handler: h, have: cfg.runtimes(), err: err}
}
