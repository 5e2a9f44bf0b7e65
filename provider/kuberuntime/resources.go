package kuberuntime

import (
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's CPU constants (pkg/kubelet/cm/helpers_linux.go).
const (
	minShares     = 2
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	quotaPeriod   = 100000 // 100 ms, in µs
	minQuota      = 1000   // 1 ms
)

// linuxResources are the CRI resources of a container from its requests and limits, as the
// kubelet computes them: CPU shares from the request (the limit when no request is given, the
// minimum when neither), a CFS quota from the CPU limit, the memory limit in bytes.
func linuxResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	cpuReq, hasReq := c.Resources.Requests[corev1.ResourceCPU]
	cpuLim, hasLim := c.Resources.Limits[corev1.ResourceCPU]
	req := int64(0)
	switch {
	case hasReq:
		req = cpuReq.MilliValue()
	case hasLim:
		req = cpuLim.MilliValue()
	}
	r.CpuShares = milliCPUToShares(req)
	if hasLim {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = milliCPUToQuota(cpuLim.MilliValue(), quotaPeriod)
	}
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimitInBytes = mem.Value()
	}
	return r
}

func milliCPUToShares(milli int64) int64 {
	if milli == 0 {
		return minShares
	}
	shares := milli * sharesPerCPU / milliCPUToCPU
	if shares < minShares {
		return minShares
	}
	return shares
}

func milliCPUToQuota(milli, period int64) int64 {
	if milli == 0 {
		return 0
	}
	quota := milli * period / milliCPUToCPU
	if quota < minQuota {
		return minQuota
	}
	return quota
}
