package gpu

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Annotation records on a CRI container the indices of the GPUs it was given ("0,3"). It is
// the only record of an allocation: Satellite reads it back from the host every time it
// allocates, so a restarted Satellite knows which devices are taken.
const Annotation = "satellite.dev/gpus"

// envVisibleDevices is what the NVIDIA container runtime reads to choose a container's GPUs;
// "void" gives none, as the NVIDIA device plugin sets it for containers without GPUs.
const envVisibleDevices = "NVIDIA_VISIBLE_DEVICES"

// Shortage is an allocation that cannot be made: the scheduler counted devices that
// containers still hold. The message is the kubelet device manager's.
type Shortage struct {
	Requested, Available int
}

func (e *Shortage) Error() string {
	return fmt.Sprintf("Allocate failed due to requested number of devices unavailable for %s. Requested: %d, Available: %d, which is unexpected",
		ResourceName, e.Requested, e.Available)
}

// request is how many GPUs the container's limits ask for (an extended resource is asked for
// in limits; requests, if given, must equal them).
func request(c *corev1.Container) int {
	q, ok := c.Resources.Limits[ResourceName]
	if !ok {
		return 0
	}
	return int(q.Value())
}

// heldDevices are the GPU indices held by the node's containers in CREATED or RUNNING state, from
// their Annotation. An exited container holds nothing, so an init container's devices are
// free again for the containers after it.
func heldDevices(ctrs []*runtimeapi.Container) map[int]bool {
	out := map[int]bool{}
	for _, c := range ctrs {
		if c.State != runtimeapi.ContainerState_CONTAINER_CREATED && c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		for _, s := range strings.Split(c.Annotations[Annotation], ",") {
			if i, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
				out[i] = true
			}
		}
	}
	return out
}

// pick chooses n of the host's GPUs that no container holds, lowest index first.
func pick(gpus []Device, held map[int]bool, n int) ([]Device, error) {
	var free []Device
	for _, g := range gpus {
		if !held[g.Index] {
			free = append(free, g)
		}
	}
	if len(free) < n {
		return nil, &Shortage{Requested: n, Available: len(free)}
	}
	return free[:n], nil
}

// apply gives a container its devices in its CRI config. In CDI mode they are CDI names
// (nvidia.com/gpu=<index>, as `nvidia-ctk cdi generate` names them); in env mode their UUIDs
// in NVIDIA_VISIBLE_DEVICES. Either way the indices are recorded in Annotation, and
// NVIDIA_VISIBLE_DEVICES is set last, so that it wins over the pod's and the image's: "void"
// in CDI mode and for a container without GPUs, which keeps a host whose default runtime
// is nvidia-container-runtime from giving every GPU to a CUDA image (whose env says "all").
func apply(cfg *runtimeapi.ContainerConfig, mode Mode, devs []Device) {
	if mode == ModeOff {
		return
	}
	visible := "void"
	if len(devs) > 0 {
		idx := make([]string, len(devs))
		uuids := make([]string, len(devs))
		for i, d := range devs {
			idx[i], uuids[i] = strconv.Itoa(d.Index), d.UUID
		}
		if cfg.Annotations == nil {
			cfg.Annotations = map[string]string{}
		}
		cfg.Annotations[Annotation] = strings.Join(idx, ",")
		switch mode {
		case ModeCDI:
			for _, i := range idx {
				cfg.CDIDevices = append(cfg.CDIDevices, &runtimeapi.CDIDevice{Name: string(ResourceName) + "=" + i})
			}
		case ModeEnv:
			visible = strings.Join(uuids, ",")
		}
	}
	envs := cfg.Envs[:0:0]
	for _, e := range cfg.Envs {
		if e.Key != envVisibleDevices {
			envs = append(envs, e)
		}
	}
	cfg.Envs = append(envs, &runtimeapi.KeyValue{Key: envVisibleDevices, Value: visible})
}

// Assign gives the container the GPUs its limits ask for, editing cfg. When it took devices
// it returns with the node's allocation lock held, so that no other container can take them
// before this one exists on the host: the caller calls release once CreateContainer has
// returned. A *Shortage error means not enough devices are free.
func (m *Manager) Assign(ctx context.Context, c *corev1.Container, cfg *runtimeapi.ContainerConfig) (release func(), err error) {
	noop := func() {}
	n := request(c)
	gpus := m.Devices()
	if n == 0 {
		if len(gpus) > 0 {
			apply(cfg, m.Mode(), nil)
		}
		return noop, nil
	}
	m.alloc.Lock()
	resp, err := m.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{LabelSelector: m.cfg.NodeContainers}})
	if err != nil {
		m.alloc.Unlock()
		return noop, fmt.Errorf("list the containers holding GPUs: %w", err)
	}
	devs, err := pick(gpus, heldDevices(resp.Containers), n)
	if err != nil {
		m.alloc.Unlock()
		return noop, err
	}
	apply(cfg, m.Mode(), devs)
	return m.alloc.Unlock, nil
}
