package kuberuntime

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCeilRatio(t *testing.T) {
	t.Parallel()
	maxInt := strconv.FormatInt(1<<63-1, 10)
	for _, tt := range []struct{ q, div, want string }{
		{"250m", "1m", "250"},
		{"250m", "1", "1"},
		{"1500m", "1", "2"},
		{"2", "1", "2"},
		{"2", "1m", "2000"},
		{"128Mi", "1", "134217728"},
		{"128Mi", "1Mi", "128"},
		{"100M", "1Mi", "96"}, // 95.37 rounds up
		{"1Gi", "1G", "2"},
		{"0", "1", "0"},
		{"1", "1k", "1"},
		{"1", "1e30", "1"},
		{"1e30", "1", maxInt},
		{"9223372036854775807", "1", maxInt},
		{"9223372036854775808", "1", maxInt},
		{"1", "1n", "1000000000"},
	} {
		if got := ceilRatio(resource.MustParse(tt.q), resource.MustParse(tt.div)); got != tt.want {
			t.Errorf("⌈%s / %s⌉ = %s, want %s", tt.q, tt.div, got, tt.want)
		}
	}
}

func TestContainerResourceDefaults(t *testing.T) {
	t.Parallel()
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi")}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "set", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"),
			corev1.ResourceMemory: resource.MustParse("0"), "hugepages-2Mi": resource.MustParse("4Mi")}}},
		{Name: "unset"},
	}}}
	for _, tt := range []struct {
		container, res, div string
		podLimits           corev1.ResourceList
		want, wantErr       string
	}{
		{container: "set", res: "limits.cpu", div: "1m", want: "500"},
		{container: "set", res: "limits.memory", want: "8589934592"}, // a zero limit reads as allocatable
		{container: "set", res: "limits.hugepages-2Mi", div: "1Mi", want: "4"},
		{container: "unset", res: "limits.cpu", want: "4"},
		{container: "unset", res: "limits.memory", div: "1Gi", want: "8"},
		{container: "unset", res: "limits.ephemeral-storage", div: "1Gi", want: "100"},
		{container: "unset", res: "limits.hugepages-2Mi", want: "0"}, // never defaulted
		{container: "unset", res: "requests.cpu", want: "0"},
		{container: "unset", res: "limits.cpu", podLimits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}, want: "2"},
		{container: "unset", res: "limits.memory", div: "1Mi", podLimits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}, want: "256"},
		{container: "unset", res: "limits.nvidia.com/gpu", wantErr: "unsupported container resource : limits.nvidia.com/gpu"},
		{container: "unset", res: "cpu", wantErr: "unsupported container resource : cpu"},
		{container: "gone", res: "limits.cpu", wantErr: "container gone not found"},
	} {
		p := pod.DeepCopy()
		if tt.podLimits != nil {
			p.Spec.Resources = &corev1.ResourceRequirements{Limits: tt.podLimits}
		}
		ref := &corev1.ResourceFieldSelector{ContainerName: tt.container, Resource: tt.res}
		if tt.div != "" {
			ref.Divisor = resource.MustParse(tt.div)
		}
		got, err := ContainerResource(p, nil, ref, alloc)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s %s: err = %v, want %q", tt.container, tt.res, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s %s / %s (pod limits %v) = %q, %v; want %q", tt.container, tt.res, tt.div, tt.podLimits, got, err, tt.want)
		}
	}
	// Before the host was first read there is no allocatable: an unset limit reads as 0.
	if got, _ := ContainerResource(pod, &pod.Spec.Containers[1], &corev1.ResourceFieldSelector{Resource: "limits.cpu"}, nil); got != "0" {
		t.Errorf("without allocatable: %q, want 0", got)
	}
}

func TestEnvFieldVersion(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0"}, Spec: corev1.PodSpec{NodeName: "sat-node"}}
	if _, err := EnvField(pod, &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}, "1.2.3.4"); err == nil {
		t.Error("an unknown API version was accepted")
	}
	if v, err := EnvField(pod, &corev1.ObjectFieldSelector{FieldPath: "spec.host"}, "1.2.3.4"); err != nil || v != "sat-node" {
		t.Errorf("spec.host = %q, %v; want the node name", v, err)
	}
}
