package kuberuntime

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestLinuxResources(t *testing.T) {
	q := resource.MustParse
	cases := []struct {
		name                  string
		req, lim              corev1.ResourceList
		shares, quota, period int64
		memory                int64
	}{
		{"best effort", nil, nil, 2, 0, 0, 0},
		{"request only", corev1.ResourceList{"cpu": q("500m")}, nil, 512, 0, 0, 0},
		{"limit only", nil, corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi")}, 2048, 200000, 100000, 1 << 30},
		{"tiny", corev1.ResourceList{"cpu": q("1m")}, corev1.ResourceList{"cpu": q("1m")}, 2, 1000, 100000, 0},
		{"both", corev1.ResourceList{"cpu": q("250m"), "memory": q("64Mi")}, corev1.ResourceList{"cpu": q("1500m"), "memory": q("128Mi")}, 256, 150000, 100000, 128 << 20},
	}
	for _, tc := range cases {
		r := linuxResources(&corev1.Container{Resources: corev1.ResourceRequirements{Requests: tc.req, Limits: tc.lim}})
		if r.CpuShares != tc.shares || r.CpuQuota != tc.quota || r.CpuPeriod != tc.period || r.MemoryLimitInBytes != tc.memory {
			t.Errorf("%s: shares=%d quota=%d period=%d memory=%d, want %d %d %d %d", tc.name,
				r.CpuShares, r.CpuQuota, r.CpuPeriod, r.MemoryLimitInBytes, tc.shares, tc.quota, tc.period, tc.memory)
		}
	}
}
