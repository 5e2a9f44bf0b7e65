package gpu

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/remote"
)

// ResourceName is the extended resource NVIDIA's device plugin advertises, which pods ask for
// in their limits.
const ResourceName corev1.ResourceName = "nvidia.com/gpu"

// Device is one NVIDIA GPU of the host, as nvidia-smi reports it.
type Device struct {
	Index     int
	UUID      string // GPU-8c4f...
	Name      string // NVIDIA A100-SXM4-80GB
	MemoryMiB int64  // 0 when nvidia-smi says [N/A] (unified-memory parts)
	Driver    string // 535.104.05
}

// Reading is what one run of FactsCommand told of the host's GPUs.
type Reading struct {
	// Devices are the host's GPUs (none without nvidia-smi); Err is why nvidia-smi could not
	// list them, in which case Devices is empty.
	Devices []Device
	Err     error
	// Usage is how busy the GPUs were (gpuuse= lines), for metrics.
	Usage []Usage
}

// nvidiaSMIQuery is the query Satellite runs; parseNvidiaSMI reads its output.
const nvidiaSMIQuery = "--query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader,nounits"

// maxGPUs bounds what a host can claim, so garbage cannot make a huge node.
const maxGPUs = 256

// FactsCommand prints nothing when nvidia-smi is "" or absent (a host without GPUs), else
// "gpuexit=<status>" and one "gpu=<line>" per line nvidia-smi printed, then the GPUs' usage
// ("gpuuse=<line>", usageCommand): the host facts' command runs it, and hands those lines to
// Parse. nvidia-smi hangs when the driver is wedged: it gets 10 seconds.
func FactsCommand(nvidiaSMI string) string {
	if nvidiaSMI == "" {
		return ""
	}
	bin := remote.Quote(nvidiaSMI)
	return `PATH="$PATH:/usr/bin:/usr/local/nvidia/bin"; if command -v ` + bin + ` >/dev/null 2>&1; then ` +
		`t=; command -v timeout >/dev/null 2>&1 && t="timeout 10"; ` +
		`out=$($t ` + bin + ` ` + nvidiaSMIQuery + ` 2>&1); e=$?; echo "gpuexit=$e"; ` +
		`printf '%s\n' "$out" | sed 's/^/gpu=/'; ` + usageCommand(bin) + `; fi`
}

// Parse reads FactsCommand's output: exit is the gpuexit= value ("" when it printed none),
// devices the gpu= lines and usage the gpuuse= lines, without their keys.
func Parse(exit string, devices, usage []string) Reading {
	var r Reading
	r.Devices, r.Err = readDevices(exit, devices)
	r.Usage = parseUsage(usage)
	return r
}

// readDevices reads the GPUs, or why nvidia-smi could not list them.
func readDevices(exit string, lines []string) ([]Device, error) {
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
func parseNvidiaSMI(out []byte) ([]Device, error) {
	var gpus []Device
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

func parseGPULine(line string) (Device, error) {
	f := strings.Split(line, ",")
	if len(f) < 5 {
		return Device{}, fmt.Errorf("nvidia-smi: %q: want index, uuid, name, memory.total, driver_version", line)
	}
	n := len(f)
	name := strings.TrimSpace(strings.Join(f[2:n-2], ","))
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	g := Device{UUID: f[1], Name: name, Driver: f[n-1]}
	var err error
	if g.Index, err = strconv.Atoi(f[0]); err != nil || g.Index < 0 || g.Index >= maxGPUs {
		return Device{}, fmt.Errorf("nvidia-smi: %q: index %q is not a GPU index", line, f[0])
	}
	if !validUUID(g.UUID) {
		return Device{}, fmt.Errorf("nvidia-smi: %q: %q is not a GPU UUID", line, g.UUID)
	}
	if g.Name == "" || g.Driver == "" || strings.HasPrefix(g.Driver, "[") {
		return Device{}, fmt.Errorf("nvidia-smi: %q: no name or driver version", line)
	}
	if mem := f[n-2]; !strings.HasPrefix(mem, "[") { // [N/A], [Not Supported]
		if g.MemoryMiB, err = strconv.ParseInt(mem, 10, 64); err != nil || g.MemoryMiB < 0 {
			return Device{}, fmt.Errorf("nvidia-smi: %q: memory %q is not a number of MiB", line, mem)
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

// changes compares two readings of the host's GPUs by UUID.
func changes(old, cur []Device) (lost, added []Device) {
	in := func(gs []Device, uuid string) bool {
		for _, g := range gs {
			if g.UUID == uuid {
				return true
			}
		}
		return false
	}
	for _, g := range old {
		if !in(cur, g.UUID) {
			lost = append(lost, g)
		}
	}
	for _, g := range cur {
		if !in(old, g.UUID) {
			added = append(added, g)
		}
	}
	return lost, added
}
