package kuberuntime

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The downward API as the kubelet resolves it for env and for downwardAPI volumes:
// fieldRef paths (pkg/kubelet/kubelet_pods.go podFieldSelectorRuntimeValue) and
// resourceFieldRef values (pkg/api/v1/resource/helpers.go).

// EnvField is the value of an env fieldRef. status.podIP and status.hostIP are the host's
// address: every pod on a Satellite node is in the host's network namespace, which is what
// the kubelet reports for a hostNetwork pod. The API server admits only the paths below.
func EnvField(pod *corev1.Pod, fs *corev1.ObjectFieldSelector, hostIP string) (string, error) {
	if fs.APIVersion != "" && fs.APIVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", fs.APIVersion)
	}
	switch fs.FieldPath {
	case "spec.nodeName", "spec.host":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs":
		return hostIP, nil
	}
	return PodField(pod, fs.FieldPath)
}

// ContainerResource resolves a resourceFieldRef as the kubelet does: the named container's
// request or limit (the container itself when the name is empty, as env allows), an unset or
// zero limit of CPU, memory or ephemeral storage reading as the pod-level limit, else as the
// node's allocatable (defaultPodLimitsForDownwardAPI); divided by the divisor and rounded up.
func ContainerResource(pod *corev1.Pod, self *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	c := self
	if ref.ContainerName != "" {
		c = findContainer(pod, ref.ContainerName)
	}
	if c == nil {
		return "", fmt.Errorf("container %s not found", ref.ContainerName)
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	res := corev1.ResourceName(name)
	if !ok || (kind != "limits" && kind != "requests") || !downwardResource(res) {
		return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if kind == "requests" {
		return ceilRatio(c.Resources.Requests[res], divisor), nil
	}
	q, set := c.Resources.Limits[res]
	if (!set || q.IsZero()) && !strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		q = defaultLimit(pod, res, allocatable)
	}
	return ceilRatio(q, divisor), nil
}

// defaultLimit is what an unset limit reads as: the pod-level limit, else the node's
// allocatable (hugepages are never defaulted: they are never overcommitted).
func defaultLimit(pod *corev1.Pod, res corev1.ResourceName, allocatable corev1.ResourceList) resource.Quantity {
	if pod.Spec.Resources != nil {
		if q, ok := pod.Spec.Resources.Limits[res]; ok && !q.IsZero() && (res == corev1.ResourceCPU || res == corev1.ResourceMemory) {
			return q
		}
	}
	return allocatable[res]
}

func downwardResource(r corev1.ResourceName) bool {
	switch r {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return strings.HasPrefix(string(r), corev1.ResourceHugePagesPrefix)
}

// findContainer is the pod's container or init container of that name.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

// ceilRatio is ⌈q / divisor⌉ in decimal, computed exactly; 0 for a quantity or divisor that is
// not positive, saturating at the largest int64 (the kubelet's convertQuantityToString).
func ceilRatio(q, divisor resource.Quantity) string {
	if q.Sign() <= 0 || divisor.Sign() <= 0 {
		return "0"
	}
	qd, dd := q.AsDec(), divisor.AsDec()
	n := new(big.Int).Set(qd.UnscaledBig())
	d := new(big.Int).Set(dd.UnscaledBig())
	// q/divisor = n/d * 10^shift. Settle the far-off cases from the digit counts before
	// building a power of ten as wide as the shift.
	shift := int64(dd.Scale()) - int64(qd.Scale())
	digits := func(x *big.Int) int64 { return int64(float64(x.BitLen()) * math.Log10(2)) }
	switch magnitude := digits(n) - digits(d) + shift; {
	case magnitude > 20:
		return strconv.FormatInt(math.MaxInt64, 10)
	case magnitude < -2:
		return "1" // a positive ratio below 1
	}
	ten := big.NewInt(10)
	if shift > 0 {
		n.Mul(n, new(big.Int).Exp(ten, big.NewInt(shift), nil))
	} else if shift < 0 {
		d.Mul(d, new(big.Int).Exp(ten, big.NewInt(-shift), nil))
	}
	n.Add(n, d).Sub(n, big.NewInt(1)).Quo(n, d)
	if !n.IsInt64() {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return n.String()
}

// PodField is the kubelet's fieldpath.ExtractFieldPathAsString for the fields a downward API
// volume may name.
func PodField(pod *corev1.Pod, fp string) (string, error) {
	if strings.HasPrefix(fp, "metadata.labels['") && strings.HasSuffix(fp, "']") {
		return pod.Labels[strings.TrimSuffix(strings.TrimPrefix(fp, "metadata.labels['"), "']")], nil
	}
	if strings.HasPrefix(fp, "metadata.annotations['") && strings.HasSuffix(fp, "']") {
		return pod.Annotations[strings.TrimSuffix(strings.TrimPrefix(fp, "metadata.annotations['"), "']")], nil
	}
	switch fp {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", fp)
}

// formatMap renders labels or annotations as the kubelet does: sorted key="value" lines.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}
