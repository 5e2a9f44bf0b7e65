package stats

import (
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"
)

// criSample is one reading of the node's pods from containerd.
type criSample struct {
	Sandboxes  []*runtimeapi.PodSandbox
	Containers []*runtimeapi.Container
	// SandboxStats holds ListPodSandboxStats' answer when the runtime serves it (pod-level
	// cgroup figures, the containers' inside); otherwise ContainerStats holds
	// ListContainerStats' and a pod's figures are the sums of its containers'.
	SandboxStats   []*runtimeapi.PodSandboxStats
	ContainerStats []*runtimeapi.ContainerStats
}

// summary is the kubelet's stats summary (GET /stats/summary) of the node: node figures from
// the host's /proc and df, pods from containerd, built as the kubelet's CRI stats provider
// builds them (pkg/kubelet/stats/cri_stats_provider.go).
func summary(nodeName string, n nodeSample, c criSample, rates *cpuRates) *statsapi.Summary {
	return &statsapi.Summary{
		Node: nodeStats(nodeName, n, rates.node(n)),
		Pods: podStats(c, n, rates),
	}
}

// nodeStats are the node's figures as cAdvisor gives them for the root cgroup: memory usage is
// what is not free, the working set what of it cannot be dropped at once (usage less inactive
// file pages), available what the working set leaves of the total.
func nodeStats(name string, n nodeSample, nanoCores *uint64) statsapi.NodeStats {
	at := metav1.NewTime(n.At)
	usage := n.Mem.Total - n.Mem.Free
	ws := usage - min(n.Mem.InactiveFile, usage)
	fs := &statsapi.FsStats{
		Time:           at,
		CapacityBytes:  ptr.To(n.FS.Capacity),
		UsedBytes:      ptr.To(n.FS.Used),
		AvailableBytes: ptr.To(n.FS.Available),
	}
	if n.FS.Inodes > 0 {
		fs.Inodes, fs.InodesUsed, fs.InodesFree = ptr.To(n.FS.Inodes), ptr.To(n.FS.InodesUsed), ptr.To(n.FS.InodesFree)
	}
	s := statsapi.NodeStats{
		NodeName:  name,
		StartTime: metav1.NewTime(n.Boot),
		CPU:       &statsapi.CPUStats{Time: at, UsageNanoCores: nanoCores, UsageCoreNanoSeconds: ptr.To(n.CPU)},
		Memory: &statsapi.MemoryStats{
			Time:            at,
			AvailableBytes:  ptr.To(n.Mem.Total - ws),
			UsageBytes:      ptr.To(usage),
			WorkingSetBytes: ptr.To(ws),
			RSSBytes:        ptr.To(n.Mem.Anon),
			PageFaults:      ptr.To(n.Faults),
			MajorPageFaults: ptr.To(n.MajorPF),
		},
		// containerd's root holds both the images and the containers' writable layers.
		Fs:      fs,
		Runtime: &statsapi.RuntimeStats{ImageFs: fs, ContainerFs: fs},
	}
	if n.Mem.HasSwap {
		s.Swap = &statsapi.SwapStats{Time: at, SwapAvailableBytes: ptr.To(n.Mem.SwapFree), SwapUsageBytes: ptr.To(n.Mem.SwapTotal - n.Mem.SwapFree)}
	}
	return s
}

// podStats are the pods of the sample, as the kubelet lists them: one per pod name, from its
// ready sandbox (or its latest); running containers only.
func podStats(c criSample, n nodeSample, rates *cpuRates) []statsapi.PodStats {
	set := newPodSet(c, n, rates)
	if c.SandboxStats != nil {
		for _, ss := range c.SandboxStats {
			set.addSandbox(ss)
		}
	} else {
		for _, st := range c.ContainerStats {
			set.addContainer(st, true)
		}
	}
	rates.keep(set.seen)
	return set.sorted()
}

// podSet gathers one sample's pods by sandbox id.
type podSet struct {
	n         nodeSample
	rates     *cpuRates
	sandboxes map[string]*runtimeapi.PodSandbox // the pods' sandboxes (latestSandboxes)
	running   map[string]*runtimeapi.Container  // by id
	seen      map[string]bool                   // the containers counted, by id
	pods      map[string]*statsapi.PodStats     // by sandbox id
}

func newPodSet(c criSample, n nodeSample, rates *cpuRates) *podSet {
	set := &podSet{n: n, rates: rates, sandboxes: map[string]*runtimeapi.PodSandbox{},
		running: map[string]*runtimeapi.Container{}, seen: map[string]bool{}, pods: map[string]*statsapi.PodStats{}}
	for _, sb := range latestSandboxes(c.Sandboxes) {
		set.sandboxes[sb.Id] = sb
	}
	for _, ctr := range c.Containers {
		if ctr.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			set.running[ctr.Id] = ctr
		}
	}
	return set
}

// pod returns the figures of the sandbox's pod, made at its first use.
func (set *podSet) pod(sandboxID string) *statsapi.PodStats {
	if ps := set.pods[sandboxID]; ps != nil {
		return ps
	}
	sb := set.sandboxes[sandboxID]
	ps := &statsapi.PodStats{
		PodRef:    statsapi.PodReference{Name: sb.GetMetadata().GetName(), Namespace: sb.GetMetadata().GetNamespace(), UID: sb.GetMetadata().GetUid()},
		StartTime: metav1.NewTime(time.Unix(0, sb.CreatedAt)),
	}
	set.pods[sandboxID] = ps
	return ps
}

// addSandbox takes a pod's figures from its sandbox's (pod cgroup's) stats, and its running
// containers' own.
func (set *podSet) addSandbox(ss *runtimeapi.PodSandboxStats) {
	if set.sandboxes[ss.GetAttributes().GetId()] == nil {
		return
	}
	ps := set.pod(ss.Attributes.Id)
	ps.CPU, ps.Memory = sandboxCPU(ss.GetLinux().GetCpu()), sandboxMemory(ss.GetLinux().GetMemory())
	for _, st := range ss.GetLinux().GetContainers() {
		set.addContainer(st, false)
	}
}

// addContainer adds a running container of a known pod to it, and its figures to the pod's
// when sumIntoPod.
func (set *podSet) addContainer(st *runtimeapi.ContainerStats, sumIntoPod bool) {
	ctr := set.running[st.GetAttributes().GetId()]
	if ctr == nil || set.sandboxes[ctr.PodSandboxId] == nil {
		return
	}
	set.seen[ctr.Id] = true
	ps := set.pod(ctr.PodSandboxId)
	cs := containerStats(st, ctr, set.n, set.rates.container(st))
	if sumIntoPod {
		addToPod(ps, &cs)
	}
	ps.Containers = append(ps.Containers, cs)
}

// sorted lists the pods by namespace and name, each's containers by name.
func (set *podSet) sorted() []statsapi.PodStats {
	out := make([]statsapi.PodStats, 0, len(set.pods))
	for _, ps := range set.pods {
		sort.Slice(ps.Containers, func(i, j int) bool { return ps.Containers[i].Name < ps.Containers[j].Name })
		out = append(out, *ps)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].PodRef, out[j].PodRef
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})
	return out
}

// latestSandboxes keeps one sandbox per pod name: the ready ones, else the latest created, as
// the kubelet's removeTerminatedPods does.
func latestSandboxes(sbs []*runtimeapi.PodSandbox) []*runtimeapi.PodSandbox {
	byPod := map[[2]string][]*runtimeapi.PodSandbox{}
	for _, sb := range sbs {
		k := [2]string{sb.GetMetadata().GetNamespace(), sb.GetMetadata().GetName()}
		byPod[k] = append(byPod[k], sb)
	}
	var out []*runtimeapi.PodSandbox
	for _, list := range byPod {
		sort.Slice(list, func(i, j int) bool { return list[i].CreatedAt < list[j].CreatedAt })
		ready := false
		for _, sb := range list {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				out, ready = append(out, sb), true
			}
		}
		if !ready {
			out = append(out, list[len(list)-1])
		}
	}
	return out
}

// containerStats is one container's figures, with zeros for what the runtime left out, as in
// the kubelet's makeContainerCPUAndMemoryStats. The writable layer's filesystem is the
// containerd root's.
func containerStats(st *runtimeapi.ContainerStats, ctr *runtimeapi.Container, n nodeSample, nanoCores *uint64) statsapi.ContainerStats {
	u := func(v *runtimeapi.UInt64Value) *uint64 {
		if v == nil {
			return ptr.To[uint64](0)
		}
		return ptr.To(v.Value)
	}
	cs := statsapi.ContainerStats{Name: st.GetAttributes().GetMetadata().GetName(), StartTime: metav1.NewTime(time.Unix(0, ctr.CreatedAt))}
	if cpu := st.GetCpu(); cpu != nil {
		cs.CPU = &statsapi.CPUStats{Time: metav1.NewTime(time.Unix(0, cpu.Timestamp)), UsageNanoCores: nanoCores, UsageCoreNanoSeconds: u(cpu.UsageCoreNanoSeconds)}
	} else {
		cs.CPU = &statsapi.CPUStats{Time: metav1.NewTime(n.At), UsageNanoCores: ptr.To[uint64](0), UsageCoreNanoSeconds: ptr.To[uint64](0)}
	}
	mem := st.GetMemory()
	if mem == nil {
		mem = &runtimeapi.MemoryUsage{Timestamp: n.At.UnixNano()}
	}
	cs.Memory = &statsapi.MemoryStats{
		Time:            metav1.NewTime(time.Unix(0, mem.Timestamp)),
		AvailableBytes:  u(mem.AvailableBytes),
		UsageBytes:      u(mem.UsageBytes),
		WorkingSetBytes: u(mem.WorkingSetBytes),
		RSSBytes:        u(mem.RssBytes),
		PageFaults:      u(mem.PageFaults),
		MajorPageFaults: u(mem.MajorPageFaults),
	}
	swap := st.GetSwap()
	if swap == nil {
		swap = &runtimeapi.SwapUsage{Timestamp: n.At.UnixNano()}
	}
	cs.Swap = &statsapi.SwapStats{Time: metav1.NewTime(time.Unix(0, swap.Timestamp)), SwapAvailableBytes: u(swap.SwapAvailableBytes), SwapUsageBytes: u(swap.SwapUsageBytes)}
	if wl := st.GetWritableLayer(); wl != nil {
		cs.Rootfs = &statsapi.FsStats{
			Time:           metav1.NewTime(time.Unix(0, wl.Timestamp)),
			UsedBytes:      u(wl.UsedBytes),
			InodesUsed:     u(wl.InodesUsed),
			CapacityBytes:  ptr.To(n.FS.Capacity),
			AvailableBytes: ptr.To(n.FS.Available),
		}
		if n.FS.Inodes > 0 {
			cs.Rootfs.Inodes, cs.Rootfs.InodesFree = ptr.To(n.FS.Inodes), ptr.To(n.FS.InodesFree)
		}
	}
	return cs
}

// addToPod adds a container's figures to its pod's, as the kubelet does when it has no pod
// cgroup figures (addPodCPUMemoryStats, addSwapStats).
func addToPod(ps *statsapi.PodStats, cs *statsapi.ContainerStats) {
	sum := func(a, b *uint64) *uint64 { return ptr.To(ptr.Deref(a, 0) + ptr.Deref(b, 0)) }
	if ps.CPU == nil {
		ps.CPU = &statsapi.CPUStats{}
	}
	ps.CPU.Time = cs.CPU.Time
	ps.CPU.UsageCoreNanoSeconds = sum(ps.CPU.UsageCoreNanoSeconds, cs.CPU.UsageCoreNanoSeconds)
	ps.CPU.UsageNanoCores = sum(ps.CPU.UsageNanoCores, cs.CPU.UsageNanoCores)
	if ps.Memory == nil {
		ps.Memory = &statsapi.MemoryStats{}
	}
	m, c := ps.Memory, cs.Memory
	m.Time = c.Time
	m.AvailableBytes, m.UsageBytes, m.WorkingSetBytes = sum(m.AvailableBytes, c.AvailableBytes), sum(m.UsageBytes, c.UsageBytes), sum(m.WorkingSetBytes, c.WorkingSetBytes)
	m.RSSBytes, m.PageFaults, m.MajorPageFaults = sum(m.RSSBytes, c.RSSBytes), sum(m.PageFaults, c.PageFaults), sum(m.MajorPageFaults, c.MajorPageFaults)
	if ps.Swap == nil {
		ps.Swap = &statsapi.SwapStats{Time: cs.Swap.Time}
	}
	ps.Swap.SwapAvailableBytes = sum(ps.Swap.SwapAvailableBytes, cs.Swap.SwapAvailableBytes)
	ps.Swap.SwapUsageBytes = sum(ps.Swap.SwapUsageBytes, cs.Swap.SwapUsageBytes)
}

// sandboxCPU and sandboxMemory are a pod's figures from its sandbox's (pod cgroup's) stats, as
// the kubelet's addCRIPodCPUStats and addCRIPodMemoryStats take them.
func sandboxCPU(c *runtimeapi.CpuUsage) *statsapi.CPUStats {
	if c == nil {
		return nil
	}
	return &statsapi.CPUStats{Time: metav1.NewTime(time.Unix(0, c.Timestamp)), UsageNanoCores: value(c.UsageNanoCores), UsageCoreNanoSeconds: value(c.UsageCoreNanoSeconds)}
}

func sandboxMemory(m *runtimeapi.MemoryUsage) *statsapi.MemoryStats {
	if m == nil {
		return nil
	}
	return &statsapi.MemoryStats{
		Time:            metav1.NewTime(time.Unix(0, m.Timestamp)),
		AvailableBytes:  value(m.AvailableBytes),
		UsageBytes:      value(m.UsageBytes),
		WorkingSetBytes: value(m.WorkingSetBytes),
		RSSBytes:        value(m.RssBytes),
		PageFaults:      value(m.PageFaults),
		MajorPageFaults: value(m.MajorPageFaults),
	}
}

func value(v *runtimeapi.UInt64Value) *uint64 {
	if v == nil {
		return nil
	}
	return ptr.To(v.Value)
}
