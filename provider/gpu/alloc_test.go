package gpu

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
)

func heldCtr(state runtimeapi.ContainerState, gpus string) *runtimeapi.Container {
	c := &runtimeapi.Container{State: state, Annotations: map[string]string{}}
	if gpus != "" {
		c.Annotations[Annotation] = gpus
	}
	return c
}

// Allocations are recovered from the host: the annotation of every container that is created
// or running; exited (and unknown-state) containers hold nothing.
func TestHeldGPUs(t *testing.T) {
	t.Parallel()
	const (
		created = runtimeapi.ContainerState_CONTAINER_CREATED
		running = runtimeapi.ContainerState_CONTAINER_RUNNING
		exited  = runtimeapi.ContainerState_CONTAINER_EXITED
		unknown = runtimeapi.ContainerState_CONTAINER_UNKNOWN
	)
	for name, tt := range map[string]struct {
		ctrs []*runtimeapi.Container
		want []int
	}{
		"none":                      {nil, nil},
		"running and created":       {[]*runtimeapi.Container{heldCtr(running, "0,3"), heldCtr(created, "5")}, []int{0, 3, 5}},
		"exited init container":     {[]*runtimeapi.Container{heldCtr(exited, "1"), heldCtr(running, "2")}, []int{2}},
		"unknown state":             {[]*runtimeapi.Container{heldCtr(unknown, "4")}, nil},
		"no annotation":             {[]*runtimeapi.Container{heldCtr(running, "")}, nil},
		"garbage in the annotation": {[]*runtimeapi.Container{heldCtr(running, "x, 6 ,,")}, []int{6}},
	} {
		got := heldDevices(tt.ctrs)
		var idx []int
		for i := range got {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		if fmt.Sprint(idx) != fmt.Sprint(tt.want) && !(len(idx) == 0 && len(tt.want) == 0) {
			t.Errorf("%s: held %v, want %v", name, idx, tt.want)
		}
	}
}

func fourGPUs() []Device {
	var g []Device
	for i := range 4 {
		g = append(g, Device{Index: i, UUID: fmt.Sprintf("GPU-%d", i), Name: "NVIDIA A10G", MemoryMiB: 23028, Driver: "550.54.15"})
	}
	return g
}

func TestPickGPUs(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		held      []int
		n         int
		want      string // indices, or the error
		available int
	}{
		"all free":            {nil, 2, "0,1", 0},
		"lowest free first":   {[]int{0, 2}, 2, "1,3", 0},
		"all of them":         {nil, 4, "0,1,2,3", 0},
		"one short":           {[]int{1}, 4, "Allocate failed due to requested number of devices unavailable for nvidia.com/gpu. Requested: 4, Available: 3, which is unexpected", 3},
		"none free":           {[]int{0, 1, 2, 3}, 1, "Allocate failed due to requested number of devices unavailable for nvidia.com/gpu. Requested: 1, Available: 0, which is unexpected", 0},
		"held device unknown": {[]int{7}, 4, "0,1,2,3", 0},
	} {
		held := map[int]bool{}
		for _, i := range tt.held {
			held[i] = true
		}
		devs, err := pick(fourGPUs(), held, tt.n)
		var got []string
		for _, d := range devs {
			got = append(got, fmt.Sprint(d.Index))
		}
		var short *Shortage
		switch {
		case err != nil && (!errors.As(err, &short) || err.Error() != tt.want || short.Available != tt.available):
			t.Errorf("%s: error %v, want %s", name, err, tt.want)
		case err == nil && strings.Join(got, ",") != tt.want:
			t.Errorf("%s: picked %v, want %s", name, got, tt.want)
		}
	}
}

func envOf(cfg *runtimeapi.ContainerConfig, key string) []string {
	var v []string
	for _, e := range cfg.Envs {
		if e.Key == key {
			v = append(v, e.Value)
		}
	}
	return v
}

func TestApplyGPUs(t *testing.T) {
	t.Parallel()
	devs := fourGPUs()[1:3]
	for _, tt := range []struct {
		mode    Mode
		devs    []Device
		cdi     string
		visible string // "" for no NVIDIA_VISIBLE_DEVICES at all
		annot   string
	}{
		{ModeCDI, devs, "nvidia.com/gpu=1,nvidia.com/gpu=2", "void", "1,2"},
		{ModeEnv, devs, "", "GPU-1,GPU-2", "1,2"},
		{ModeCDI, nil, "", "void", ""},
		{ModeEnv, nil, "", "void", ""},
		{ModeOff, devs, "", "all", ""},
	} {
		// The pod's env as the container's config carries it, with NVIDIA_VISIBLE_DEVICES=all.
		cfg := &runtimeapi.ContainerConfig{Envs: []*runtimeapi.KeyValue{{Key: "A", Value: "1"}, {Key: "B"}, {Key: envVisibleDevices, Value: "all"}}}
		apply(cfg, tt.mode, tt.devs)
		var cdi []string
		for _, d := range cfg.CDIDevices {
			cdi = append(cdi, d.Name)
		}
		if got := strings.Join(cdi, ","); got != tt.cdi {
			t.Errorf("mode %s, %d GPUs: CDI devices %q, want %q", tt.mode, len(tt.devs), got, tt.cdi)
		}
		// The pod's own NVIDIA_VISIBLE_DEVICES=all never survives, except with GPUs off.
		if got := envOf(cfg, envVisibleDevices); len(got) != 1 || got[0] != tt.visible {
			t.Errorf("mode %s, %d GPUs: NVIDIA_VISIBLE_DEVICES %q, want only %q", tt.mode, len(tt.devs), got, tt.visible)
		}
		if got := cfg.Annotations[Annotation]; got != tt.annot {
			t.Errorf("mode %s, %d GPUs: annotation %q, want %q", tt.mode, len(tt.devs), got, tt.annot)
		}
		if got := envOf(cfg, "A"); len(got) != 1 || got[0] != "1" {
			t.Errorf("mode %s: the pod's other env lost: %q", tt.mode, got)
		}
	}
}

// labelNode is the CRI label by which the node's containers are told from others on the host.
const labelNode = "satellite.dev/node"

func gpuPod(name string, n int64) (*corev1.Pod, *corev1.Container) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "example.test/web:1"}}},
	}
	c := &pod.Spec.Containers[0]
	if n > 0 {
		c.Resources.Limits = corev1.ResourceList{ResourceName: *resource.NewQuantity(n, resource.DecimalSI)}
	}
	return pod, c
}

// Concurrent pod workers never get the same device, a restarted Satellite (a new Manager on
// the same host) sees what the previous one gave, and a container that exited frees its
// devices.
func TestAssignGPUs(t *testing.T) {
	t.Parallel()
	cri := fake.NewRuntime()
	cri.Hooks.Status = func(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
		return nil, errors.New("no status here")
	}
	sandbox := cri.AddSandbox(&runtimeapi.PodSandboxConfig{})
	cri.AddImage("example.test/web:1")
	image := &runtimeapi.ImageSpec{Image: "example.test/web:1"}
	// Another node's container on the same host holds GPU 0 of its own: not ours to count.
	cri.AddContainer(sandbox, &runtimeapi.ContainerStatus{Id: "other", State: runtimeapi.ContainerState_CONTAINER_RUNNING,
		Labels: map[string]string{labelNode: "other"}, Annotations: map[string]string{Annotation: "0"}})
	newManager := func() *Manager {
		m := New(Config{Mode: ModeCDI, NodeContainers: map[string]string{labelNode: "node-a"}}, cri, nil)
		m.Observe(context.Background(), Reading{Devices: fourGPUs()})
		return m
	}
	// config is the container's config as the pod worker makes it: the node's label on it.
	config := func() *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Image: image, Labels: map[string]string{labelNode: "node-a"}}
	}
	create := func(m *Manager, name string, n int64) (string, error) {
		_, c := gpuPod(name, n)
		cfg := config()
		release, err := m.Assign(context.Background(), c, cfg)
		if err != nil {
			return "", err
		}
		defer release()
		if _, err := cri.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: sandbox, Config: cfg}); err != nil {
			return "", err
		}
		return cfg.Annotations[Annotation], nil
	}

	m := newManager()
	var wg sync.WaitGroup
	got := make([]string, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = create(m, fmt.Sprint("pod-", i), 1)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range got {
		if errs[i] != nil || got[i] == "" || seen[got[i]] {
			t.Fatalf("concurrent allocations %q, errors %v: want three distinct devices", got, errs)
		}
		seen[got[i]] = true
	}

	// Restarted: one device is left, and only the new Manager's reading of the host says so.
	m = newManager()
	if _, err := create(m, "two", 2); err == nil || err.Error() != (&Shortage{Requested: 2, Available: 1}).Error() {
		t.Errorf("2 GPUs with 1 free: %v", err)
	}
	_, none := gpuPod("none", 0)
	cfg := config()
	if _, err := m.Assign(context.Background(), none, cfg); err != nil || fmt.Sprint(envOf(cfg, envVisibleDevices)) != "[void]" || len(cfg.CDIDevices) != 0 {
		t.Errorf("a container without GPUs: %v, env %q, CDI %v", err, envOf(cfg, envVisibleDevices), cfg.CDIDevices)
	}
	last, err := create(m, "last", 1)
	if err != nil || seen[last] {
		t.Fatalf("last free device: %q, %v", last, err)
	}
	// The first pod's container exits: its device is free again.
	ours, err := cri.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: map[string]string{labelNode: "node-a"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ours.Containers {
		if c.Annotations[Annotation] == got[0] {
			if _, err := cri.StartContainer(context.Background(), &runtimeapi.StartContainerRequest{ContainerId: c.Id}); err != nil {
				t.Fatal(err)
			}
			if err := cri.Exit(c.Id, 0, "Completed"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if again, err := create(m, "again", 1); err != nil || again != got[0] {
		t.Errorf("after an exit: %q, %v; want the freed %q", again, err, got[0])
	}
}

// FuzzGPUAllocation: whatever a created or running container's annotation holds, a GPU it
// names is never given to another container; a container given GPUs records them in an
// annotation that reads back as exactly those; pickGPUs gives n free GPUs, lowest first, or
// says how many are free.
func FuzzGPUAllocation(f *testing.F) {
	f.Add("0,3", uint8(2), uint8(runtimeapi.ContainerState_CONTAINER_RUNNING))
	f.Add("5", uint8(1), uint8(runtimeapi.ContainerState_CONTAINER_CREATED))
	f.Add("1", uint8(8), uint8(runtimeapi.ContainerState_CONTAINER_EXITED))
	f.Add("x, 6 ,,", uint8(3), uint8(runtimeapi.ContainerState_CONTAINER_RUNNING))
	f.Add("", uint8(0), uint8(runtimeapi.ContainerState_CONTAINER_UNKNOWN))
	f.Fuzz(func(t *testing.T, annotation string, n, state uint8) {
		var gpus []Device
		for i := range 8 {
			gpus = append(gpus, Device{Index: i, UUID: fmt.Sprintf("GPU-%d", i), Name: "NVIDIA A10G", MemoryMiB: 23028, Driver: "550.54.15"})
		}
		st := runtimeapi.ContainerState(state % 4)
		holder := heldCtr(st, annotation)
		named := map[int]bool{} // the indices the annotation names in Satellite's own format
		for _, s := range strings.Split(annotation, ",") {
			if i, err := strconv.Atoi(s); err == nil && strconv.Itoa(i) == s {
				named[i] = true
			}
		}
		active := st == runtimeapi.ContainerState_CONTAINER_CREATED || st == runtimeapi.ContainerState_CONTAINER_RUNNING
		held := heldDevices([]*runtimeapi.Container{holder})
		for i := range named {
			if active != held[i] {
				t.Fatalf("%s container with %q: GPU %d held = %v", st, annotation, i, held[i])
			}
		}
		if !active && len(held) > 0 {
			t.Fatalf("%s container holds %v", st, held)
		}
		free := 0
		for _, g := range gpus {
			if !held[g.Index] {
				free++
			}
		}
		want := int(n % 10)
		devs, err := pick(gpus, held, want)
		var short *Shortage
		switch {
		case want > free:
			if !errors.As(err, &short) || short.Available != free || short.Requested != want {
				t.Fatalf("%d of %d free: %+v, %v", want, free, devs, err)
			}
			return
		case err != nil || len(devs) != want:
			t.Fatalf("%d of %d free: %+v, %v", want, free, devs, err)
		}
		for i, d := range devs {
			if held[d.Index] || i > 0 && d.Index <= devs[i-1].Index {
				t.Fatalf("picked %+v while %v are held", devs, held)
			}
		}
		cfg := &runtimeapi.ContainerConfig{}
		apply(cfg, ModeCDI, devs)
		mine := heldDevices([]*runtimeapi.Container{{State: runtimeapi.ContainerState_CONTAINER_CREATED, Annotations: cfg.Annotations}})
		if len(mine) != len(devs) {
			t.Fatalf("gave %+v, annotation %q reads back as %v", devs, cfg.Annotations[Annotation], mine)
		}
		for _, d := range devs {
			if !mine[d.Index] {
				t.Fatalf("gave %+v, annotation %q reads back as %v", devs, cfg.Annotations[Annotation], mine)
			}
		}
	})
}
