package doctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/satellite-vk/satellite/remote"
)

// gpu is one line of nvidia-smi's query output.
type gpu struct {
	name, driver string
	memoryMiB    int
}

const nvidiaProbe = sbinPath + `PATH="$PATH:/usr/local/nvidia/bin"
echo "devices $(ls -d /dev/nvidia[0-9]* 2>/dev/null | tr '\n' ' ')"
command -v nvidia-smi >/dev/null 2>&1 || { echo "smi missing"; exit 0; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader,nounits 2>&1
echo "smi exit $?"`

type nvidiaState struct {
	devices []string
	smi     string // "missing", or nvidia-smi's exit status
	gpus    []gpu
	output  string // nvidia-smi's output when it failed
}

// parseNvidia reads nvidiaProbe's output. A line of a successful nvidia-smi that is not a GPU
// (parseGPU) is kept in output.
func parseNvidia(out string) nvidiaState {
	var s nvidiaState
	var body []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(line, "devices"):
			s.devices = strings.Fields(strings.TrimPrefix(line, "devices"))
		case line == "smi missing":
			s.smi = "missing"
		case strings.HasPrefix(line, "smi exit "):
			s.smi = strings.TrimPrefix(line, "smi exit ")
		default:
			body = append(body, line)
		}
	}
	if s.smi != "0" {
		s.output = strings.TrimSpace(strings.Join(body, "\n"))
		return s
	}
	var other []string
	for _, line := range body {
		if g, ok := parseGPU(line); ok {
			s.gpus = append(s.gpus, g)
		} else if line = strings.TrimSpace(line); line != "" {
			other = append(other, line)
		}
	}
	s.output = strings.Join(other, "\n")
	return s
}

// parseGPU reads a "name, driver_version, memory.total" line. The name may hold commas (the
// fields after it are fixed); memory may be [N/A] (unified-memory parts), read as 0.
func parseGPU(line string) (gpu, bool) {
	f := strings.Split(line, ",")
	n := len(f)
	if n < 3 {
		return gpu{}, false
	}
	g := gpu{name: strings.TrimSpace(strings.Join(f[:n-2], ",")), driver: strings.TrimSpace(f[n-2])}
	if mem := strings.TrimSpace(f[n-1]); !strings.HasPrefix(mem, "[") {
		m, err := strconv.Atoi(mem)
		if err != nil || m < 0 {
			return gpu{}, false
		}
		g.memoryMiB = m
	}
	if g.name == "" || g.driver == "" || strings.HasPrefix(g.driver, "[") {
		return gpu{}, false
	}
	return g, true
}

// describeGPUs groups identical GPUs: "4x NVIDIA A10G (23028 MiB), driver 550.54.15".
func describeGPUs(gpus []gpu) string {
	var parts []string
	for i := 0; i < len(gpus); {
		j := i
		for j < len(gpus) && gpus[j] == gpus[i] {
			j++
		}
		parts = append(parts, fmt.Sprintf("%dx %s (%d MiB)", j-i, gpus[i].name, gpus[i].memoryMiB))
		i = j
	}
	return strings.Join(parts, ", ") + ", driver " + gpus[0].driver
}

const noGPU = "no GPU found; fine for CPU-only hosts"

func checkNvidiaSMI(ctx context.Context, h Commander) ([]gpu, Result) {
	r := Result{Name: nameNvidiaSMI}
	out, err := h.Output(ctx, nvidiaProbe)
	if err != nil {
		return nil, warn(r, "cannot look for GPUs: "+err.Error(), "")
	}
	s := parseNvidia(string(out))
	switch {
	case s.smi == "missing" && len(s.devices) == 0:
		return nil, warn(r, noGPU+" (no nvidia-smi, no /dev/nvidia*)",
			"on a GPU host, install the NVIDIA driver, which brings nvidia-smi: https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/")
	case s.smi == "missing":
		return nil, fail(r, fmt.Sprintf("NVIDIA devices (%s) but no nvidia-smi", strings.Join(s.devices, " ")),
			"install the driver's utilities (Ubuntu: nvidia-utils-<driver version>), or the full driver")
	case s.smi != "0":
		return nil, fail(r, "nvidia-smi fails: "+firstLine(s.output),
			"the driver is not loaded or does not match the kernel: check sudo dmesg | grep -i nvidia,\nreinstall the driver for the running kernel, and reboot")
	case s.output != "":
		// Satellite's own reading of nvidia-smi refuses a list with anything but GPUs in it.
		return s.gpus, warn(r, fmt.Sprintf("nvidia-smi printed %q, which is not a GPU: Satellite would advertise no GPU", firstLine(s.output)),
			"see what nvidia-smi prints on the host; sudo dmesg | grep -i nvidia shows driver trouble")
	case len(s.gpus) == 0:
		return nil, warn(r, "nvidia-smi finds no GPU; fine for CPU-only hosts", "on a GPU host: sudo dmesg | grep -i nvidia")
	}
	return s.gpus, pass(r, describeGPUs(s.gpus))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// checkGPURuntime checks that containers can be given the GPUs: a CDI spec for nvidia.com/gpu
// with CDI on in containerd (containerd 1.7+, on by default in 2.x), or an NVIDIA runtime in
// containerd's runtimes.
func checkGPURuntime(ctx context.Context, h Commander, gpus []gpu, cfg *criConfig) Result {
	r := Result{Name: nameGPURuntime}
	generate := "install the NVIDIA Container Toolkit, then: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
	if len(gpus) == 0 {
		return warn(r, noGPU, "on a GPU host: "+generate)
	}
	dirs := []string{"/etc/cdi", "/var/run/cdi"}
	if cfg != nil && len(cfg.CDISpecDirs) > 0 {
		dirs = cfg.CDISpecDirs
	}
	var quoted []string
	for _, d := range dirs {
		quoted = append(quoted, remote.Quote(d)+"/*")
	}
	out, _ := h.Output(ctx, "grep -ls 'nvidia.com/gpu' "+strings.Join(quoted, " ")+" 2>/dev/null; true")
	specs := strings.Fields(string(out))
	cdiOn := cfg != nil && cfg.EnableCDI != nil && *cfg.EnableCDI
	var runtime string
	if cfg != nil {
		runtime = cfg.nvidiaRuntime()
	}
	switch {
	case len(specs) > 0 && cdiOn:
		return pass(r, "CDI spec "+strings.Join(specs, ", ")+"; containerd's CDI is on")
	case runtime != "":
		return pass(r, fmt.Sprintf("containerd runtime %q runs NVIDIA's runtime", runtime))
	case len(specs) > 0:
		return fail(r, "CDI spec "+strings.Join(specs, ", ")+", but containerd's CDI is off",
			"containerd 1.7: enable_cdi = true under [plugins.\"io.containerd.grpc.v1.cri\"], then restart containerd;\ncontainerd 1.6 has no CDI: upgrade to 2.x, where it is on")
	}
	return fail(r, fmt.Sprintf("no CDI spec for nvidia.com/gpu in %s and no NVIDIA runtime in containerd", strings.Join(dirs, ", ")), generate)
}
