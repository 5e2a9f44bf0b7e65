package provider

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/satellite-vk/satellite/remote"
)

// ResourceGPU is the extended resource NVIDIA's device plugin advertises, which pods ask for
// in their limits.
const ResourceGPU corev1.ResourceName = "nvidia.com/gpu"

// GPUMode says how the host's NVIDIA GPUs are advertised and handed to containers.
type GPUMode string

const (
	// GPUModeAuto asks the host's containerd: GPUModeCDI when its CDI is on and a CDI spec in
	// its spec directories names nvidia.com/gpu, else GPUModeEnv (gpumode.go).
	GPUModeAuto GPUMode = "auto"
	// GPUModeCDI gives a container its devices as CDI names (nvidia.com/gpu=<index>) in the
	// CRI ContainerConfig.CDIDevices, resolved by containerd against the spec that the NVIDIA
	// Container Toolkit's `nvidia-ctk cdi generate` writes.
	GPUModeCDI GPUMode = "cdi"
	// GPUModeEnv sets NVIDIA_VISIBLE_DEVICES to the devices' UUIDs, which the NVIDIA
	// container runtime reads: the sandboxes of pods asking for GPUs run with the runtime
	// handler Config.GPURuntimeHandler (runtimehandler.go).
	GPUModeEnv GPUMode = "env"
	// GPUModeOff never advertises GPUs.
	GPUModeOff GPUMode = "off"
)

// ParseGPUMode checks a --gpu-mode value.
func ParseGPUMode(s string) (GPUMode, error) {
	switch m := GPUMode(s); m {
	case GPUModeAuto, GPUModeCDI, GPUModeEnv, GPUModeOff:
		return m, nil
	}
	return "", fmt.Errorf("GPU mode %q: want auto, cdi, env or off", s)
}

// GPU is one NVIDIA GPU of the host, as nvidia-smi reports it.
type GPU struct {
	Index     int
	UUID      string // GPU-8c4f...
	Name      string // NVIDIA A100-SXM4-80GB
	MemoryMiB int64  // 0 when nvidia-smi says [N/A] (unified-memory parts)
	Driver    string // 535.104.05
}

// nvidiaSMIQuery is the query Satellite runs; parseNvidiaSMI reads its output.
const nvidiaSMIQuery = "--query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader,nounits"

// maxGPUs bounds what a host can claim, so garbage cannot make a huge node.
const maxGPUs = 256

// gpuFactsCommand prints nothing when nvidia-smi is absent (a host without GPUs), else
// "gpuexit=<status>" and one "gpu=<line>" per line nvidia-smi printed, then the GPUs' usage
// (gpuUsageCommand). nvidia-smi hangs when the driver is wedged: it gets 10 seconds.
func gpuFactsCommand(nvidiaSMI string) string {
	if nvidiaSMI == "" {
		return ""
	}
	bin := remote.Quote(nvidiaSMI)
	return `PATH="$PATH:/usr/bin:/usr/local/nvidia/bin"; if command -v ` + bin + ` >/dev/null 2>&1; then ` +
		`t=; command -v timeout >/dev/null 2>&1 && t="timeout 10"; ` +
		`out=$($t ` + bin + ` ` + nvidiaSMIQuery + ` 2>&1); e=$?; echo "gpuexit=$e"; ` +
		`printf '%s\n' "$out" | sed 's/^/gpu=/'; ` + gpuUsageCommand(bin) + `; fi`
}

// gpuFacts reads gpuFactsCommand's lines: the GPUs, or why nvidia-smi could not list them.
func gpuFacts(exit string, lines []string) ([]GPU, error) {
	if exit == "" {
		return nil, nil // no nvidia-smi: no GPUs
	}
	out := strings.Join(lines, "\n")
	if exit != "0" {
		msg := strings.TrimSpace(out)
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if exit == "124" {
			return nil, fmt.Errorf("nvidia-smi timed out: %s", msg)
		}
		return nil, fmt.Errorf("nvidia-smi exited with status %s: %s", exit, msg)
	}
	return parseNvidiaSMI([]byte(out))
}

// parseNvidiaSMI reads the output of `nvidia-smi --query-gpu=index,uuid,name,memory.total,
// driver_version --format=csv,noheader,nounits`: one "0, GPU-<uuid>, NVIDIA H100 80GB HBM3,
// 81559, 550.54.15" line per GPU. A name may hold commas (the fields around it are fixed);
// memory may be [N/A]. Anything else is an error rather than a guess: the node's GPUs are
// what pods are scheduled by.
func parseNvidiaSMI(out []byte) ([]GPU, error) {
	var gpus []GPU
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		g, err := parseGPULine(line)
		if err != nil {
			return nil, err
		}
		idx := strconv.Itoa(g.Index)
		if seen[idx] || seen[g.UUID] {
			return nil, fmt.Errorf("nvidia-smi: GPU %s or %s listed twice", idx, g.UUID)
		}
		seen[idx], seen[g.UUID] = true, true
		if gpus = append(gpus, g); len(gpus) > maxGPUs {
			return nil, fmt.Errorf("nvidia-smi: more than %d GPUs", maxGPUs)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	sort.Slice(gpus, func(i, j int) bool { return gpus[i].Index < gpus[j].Index })
	return gpus, nil
}

func parseGPULine(line string) (GPU, error) {
	f := strings.Split(line, ",")
	if len(f) < 5 {
		return GPU{}, fmt.Errorf("nvidia-smi: %q: want index, uuid, name, memory.total, driver_version", line)
	}
	n := len(f)
	name := strings.TrimSpace(strings.Join(f[2:n-2], ","))
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	g := GPU{UUID: f[1], Name: name, Driver: f[n-1]}
	var err error
	if g.Index, err = strconv.Atoi(f[0]); err != nil || g.Index < 0 || g.Index >= maxGPUs {
		return GPU{}, fmt.Errorf("nvidia-smi: %q: index %q is not a GPU index", line, f[0])
	}
	if !validUUID(g.UUID) {
		return GPU{}, fmt.Errorf("nvidia-smi: %q: %q is not a GPU UUID", line, g.UUID)
	}
	if g.Name == "" || g.Driver == "" || strings.HasPrefix(g.Driver, "[") {
		return GPU{}, fmt.Errorf("nvidia-smi: %q: no name or driver version", line)
	}
	if mem := f[n-2]; !strings.HasPrefix(mem, "[") { // [N/A], [Not Supported]
		if g.MemoryMiB, err = strconv.ParseInt(mem, 10, 64); err != nil || g.MemoryMiB < 0 {
			return GPU{}, fmt.Errorf("nvidia-smi: %q: memory %q is not a number of MiB", line, mem)
		}
	}
	return g, nil
}

// validUUID accepts NVML's "GPU-" and hex digits with dashes: nothing that could change the
// meaning of an NVIDIA_VISIBLE_DEVICES list.
func validUUID(s string) bool {
	rest, ok := strings.CutPrefix(s, "GPU-")
	if !ok || rest == "" || len(rest) > 64 {
		return false
	}
	for _, r := range rest {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return false
		}
	}
	return true
}

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

// gpuLabels are the labels NVIDIA's GPU feature discovery puts on a node, as far as
// nvidia-smi's answer tells them: count, product (the name with spaces as '-'), memory in
// MiB and the driver version, under both the old (cuda.driver.*) and the current
// (cuda.driver-version.*) keys; and k8s.amazonaws.com/accelerator. Product and memory are
// the first GPU's, as GFD reports them.
func gpuLabels(gpus []GPU) map[string]string {
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
	parts := strings.SplitN(g.Driver, ".", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	if labelValue(parts[0]) == parts[0] && labelValue(parts[1]) == parts[1] && labelValue(parts[2]) == parts[2] && labelValue(g.Driver) == g.Driver {
		labels["nvidia.com/cuda.driver.major"] = parts[0]
		labels["nvidia.com/cuda.driver.minor"] = parts[1]
		labels["nvidia.com/cuda.driver.rev"] = parts[2]
		labels["nvidia.com/cuda.driver-version.major"] = parts[0]
		labels["nvidia.com/cuda.driver-version.minor"] = parts[1]
		labels["nvidia.com/cuda.driver-version.revision"] = parts[2]
		labels["nvidia.com/cuda.driver-version.full"] = g.Driver
	}
	return labels
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
