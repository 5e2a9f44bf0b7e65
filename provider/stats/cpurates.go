package stats

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cpuRates turns cumulative CPU readings into rates (the summary's usageNanoCores), which
// takes two readings: it keeps the last reading of every running container and of the node,
// as the kubelet's cpuUsageCache does. Entries of containers that are gone are dropped at
// each reading (keep), so it holds no more than the node's running containers. It is not safe
// for concurrent use: the stats collector's scrapes are serialised.
type cpuRates struct {
	containers map[string]cpuReading // by container id
	nodeLast   *cpuReading
	nodeBoot   time.Time
}

// cpuReading is a cumulative CPU time at a moment, both in nanoseconds (the moment on the
// clock that produced the reading).
type cpuReading struct {
	at    int64
	usage uint64
}

func newCPURates() *cpuRates { return &cpuRates{containers: map[string]cpuReading{}} }

// container returns the container's usageNanoCores, as the kubelet's
// getAndUpdateContainerUsageNanoCores does: the runtime's own figure when it gives one;
// otherwise the rate since the previous reading, nil at the first reading and after the
// counter went back (a new container has a new id, so a restart starts over too).
func (r *cpuRates) container(st *runtimeapi.ContainerStats) *uint64 {
	cpu := st.GetCpu()
	if cpu == nil {
		return nil
	}
	if cpu.UsageNanoCores != nil {
		v := cpu.UsageNanoCores.Value
		return &v
	}
	if cpu.UsageCoreNanoSeconds == nil {
		return nil
	}
	id := st.GetAttributes().GetId()
	now := cpuReading{at: cpu.Timestamp, usage: cpu.UsageCoreNanoSeconds.Value}
	prev, ok := r.containers[id]
	r.containers[id] = now
	if !ok {
		return nil
	}
	return rate(prev, now)
}

// node returns the node's usageNanoCores since the previous reading, timed by the host's
// uptime (immune to the SSH round trip); nil at the first reading and after a reboot.
func (r *cpuRates) node(s nodeSample) *uint64 {
	now := cpuReading{at: int64(s.Uptime), usage: s.CPU}
	prev, boot := r.nodeLast, r.nodeBoot
	r.nodeLast, r.nodeBoot = &now, s.Boot
	if prev == nil || !boot.Equal(s.Boot) {
		return nil
	}
	return rate(*prev, now)
}

// rate is the CPU used per second between two readings, in nanocores; nil when the counter
// went back or no time passed.
func rate(prev, now cpuReading) *uint64 {
	if now.usage < prev.usage || now.at <= prev.at {
		return nil
	}
	v := uint64(float64(now.usage-prev.usage) / float64(now.at-prev.at) * float64(time.Second))
	return &v
}

// keep forgets the containers not in seen.
func (r *cpuRates) keep(seen map[string]bool) {
	for id := range r.containers {
		if !seen[id] {
			delete(r.containers, id)
		}
	}
}
