package gpu

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// LabelAccelerator is the label EKS and the cluster autoscaler read as a node's GPU type
// (cluster-autoscaler's AWS provider: GPULabel).
const LabelAccelerator = "k8s.amazonaws.com/accelerator"

// acceleratorLabel is the k8s.amazonaws.com/accelerator value of a GPU named name, in the
// form EKS node groups use: lower case, '-' for spaces, "nvidia-" first ("NVIDIA A10G" gives
// nvidia-a10g, "Tesla T4" nvidia-tesla-t4).
func acceleratorLabel(name string) string {
	v := strings.ToLower(strings.Join(strings.Fields(name), "-"))
	if v != "" && !strings.HasPrefix(v, "nvidia-") {
		v = "nvidia-" + v
	}
	return labelValue(v)
}

// Labels are the labels NVIDIA's GPU feature discovery puts on a node, as far as nvidia-smi's
// answer tells them: count, product (the name with spaces as '-'), memory in MiB and the
// driver version, under both the old (cuda.driver.*) and the current (cuda.driver-version.*)
// keys; and k8s.amazonaws.com/accelerator. Product and memory are the first GPU's, as GFD
// reports them.
func Labels(gpus []Device) map[string]string {
	if len(gpus) == 0 {
		return nil
	}
	g := gpus[0]
	labels := map[string]string{"nvidia.com/gpu.count": strconv.Itoa(len(gpus))}
	if p := labelValue(strings.ReplaceAll(g.Name, " ", "-")); p != "" {
		labels["nvidia.com/gpu.product"] = p
	}
	if a := acceleratorLabel(g.Name); a != "" {
		labels[LabelAccelerator] = a
	}
	if g.MemoryMiB > 0 {
		labels["nvidia.com/gpu.memory"] = strconv.FormatInt(g.MemoryMiB, 10)
	}
	for k, v := range driverLabels(g.Driver) {
		labels[k] = v
	}
	return labels
}

// driverLabels are GFD's labels of a driver version "major.minor.rev", none when a part
// cannot be a label value.
func driverLabels(driver string) map[string]string {
	parts := strings.SplitN(driver, ".", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	if labelValue(parts[0]) != parts[0] || labelValue(parts[1]) != parts[1] || labelValue(parts[2]) != parts[2] || labelValue(driver) != driver {
		return nil
	}
	return map[string]string{
		"nvidia.com/cuda.driver.major":            parts[0],
		"nvidia.com/cuda.driver.minor":            parts[1],
		"nvidia.com/cuda.driver.rev":              parts[2],
		"nvidia.com/cuda.driver-version.major":    parts[0],
		"nvidia.com/cuda.driver-version.minor":    parts[1],
		"nvidia.com/cuda.driver-version.revision": parts[2],
		"nvidia.com/cuda.driver-version.full":     driver,
	}
}

// labelValue makes s a valid label value: characters a label cannot hold are dropped, it is
// cut to 63 characters and trimmed to start and end with a letter or digit.
func labelValue(s string) string {
	b := []byte{}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b = append(b, c)
		}
	}
	if len(b) > validation.LabelValueMaxLength {
		b = b[:validation.LabelValueMaxLength]
	}
	v := strings.TrimFunc(string(b), func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	if len(validation.IsValidLabelValue(v)) != 0 {
		return ""
	}
	return v
}
