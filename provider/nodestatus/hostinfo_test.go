package nodestatus

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/satellite-vk/satellite/provider/gpu"
)

var hostFactsBad = []string{
	"",
	"cpus=0\nmemkb=1\ndiskkb=1\narch=x86_64\nos=Linux",
	"cpus=2\nmemkb=\ndiskkb=1\narch=x86_64\nos=Linux",
	"cpus=2\nmemkb=5\ndiskkb=\narch=x86_64\nos=Linux",
	"cpus=2\nmemkb=5\ndiskkb=7\narch=\nos=Linux",
	"cpus=two\nmemkb=5\ndiskkb=7\narch=aarch64\nos=Linux",
}

func TestParseHostFacts(t *testing.T) {
	t.Parallel()
	f, err := parseHostFacts([]byte(hostFactsGood))
	if err != nil {
		t.Fatal(err)
	}
	if f.CPUs != 8 || f.MemoryBytes != 65843212*1024 || f.DiskBytes != 1031018216*1024 {
		t.Errorf("capacity = %d cpus, %d mem, %d disk", f.CPUs, f.MemoryBytes, f.DiskBytes)
	}
	if f.Arch != "amd64" || f.OperatingSystem != "linux" || f.OSImage != "Ubuntu 22.04.4 LTS" || f.Kernel != "6.8.0-45-generic" {
		t.Errorf("info = %+v", f)
	}
	for _, b := range hostFactsBad {
		if _, err := parseHostFacts([]byte(b)); err == nil {
			t.Errorf("parseHostFacts(%q) succeeded, want error", b)
		}
	}
	if f, _ := parseHostFacts([]byte("cpus=2\nmemkb=5\ndiskkb=7\narch=aarch64\nos=Linux")); f.Arch != "arm64" {
		t.Errorf("aarch64 -> %q, want arm64", f.Arch)
	}
}

// hostFactsGood is an Ubuntu 22.04 host's answer to hostFactsCommand; the fuzz target starts
// from it and from the unit tests' inputs (hostFactsBad).
var hostFactsGood = "cpus=8\nmemkb=65843212\ndiskkb=1031018216\nkernel=6.8.0-45-generic\narch=x86_64\nos=Linux\n" +
	"osimage=Ubuntu 22.04.4 LTS\nmachineid=abc\nbootid=def\n"

// FuzzParseHostFacts: facts that parse are usable as a node's: positive sizes that are the
// host's numbers times their unit (no overflow), an architecture and OS a label can carry,
// either GPUs (one per gpu= line) or why there are none; printed back as hostFactsCommand
// prints them, they parse to the same facts.
func FuzzParseHostFacts(f *testing.F) {
	f.Add([]byte(hostFactsGood))
	f.Add([]byte(hostFactsGood + "gpuexit=0\ngpu=" + strings.ReplaceAll(strings.TrimSpace(smiA100x8), "\n", "\ngpu=") + "\n"))
	f.Add([]byte(hostFactsGood + "gpuexit=9\ngpu=NVIDIA-SMI has failed\ngpu=second line\n"))
	f.Add([]byte("cpus=2\r\nmemkb=5\r\ndiskkb=7\r\narch=aarch64\r\nos=Linux\r\n"))
	for _, b := range hostFactsBad {
		f.Add([]byte(b))
	}
	// Regression seeds: a size that overflows in bytes; a gpu= line longer than a scanner
	// line, which ended the reading with one GPU of three.
	f.Add([]byte("cpus=1\nmemkb=9007199254740993\ndiskkb=1\narch=x86_64\nos=Linux\n"))
	f.Add([]byte("cpus=1\nmemkb=1\ndiskkb=1\narch=x86_64\nos=Linux\ngpuexit=0\n" +
		"gpu=0, GPU-aa, A, 1, 1\ngpu=1, GPU-bb, " + strings.Repeat("A", 70000) + ", 1, 1\ngpu=2, GPU-cc, A, 1, 1\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		facts, err := parseHostFacts(out)
		kv, gpuLines, twice := readFacts(string(out))
		if err == nil && twice != "" {
			t.Fatalf("fact %q given twice, accepted as %q", twice, kv[twice])
		}
		if err != nil {
			return
		}
		for _, c := range []struct {
			key  string
			got  int64
			unit int64
		}{{"cpus", facts.CPUs, 1}, {"memkb", facts.MemoryBytes, 1024}, {"diskkb", facts.DiskBytes, 1024}} {
			n, err := strconv.ParseInt(kv[c.key], 10, 64)
			if err != nil || n <= 0 || c.got <= 0 || c.got/c.unit != n || c.got%c.unit != 0 {
				t.Fatalf("%s=%q read as %d", c.key, kv[c.key], c.got)
			}
		}
		for _, l := range []string{facts.Arch, facts.OperatingSystem} {
			if errs := validation.IsValidLabelValue(l); l == "" || len(errs) > 0 {
				t.Fatalf("architecture or OS %q cannot be a node label: %v", l, errs)
			}
		}
		switch {
		case facts.GPU.Err != nil && facts.GPU.Devices != nil:
			t.Fatalf("GPUs %+v along with the error %v", facts.GPU.Devices, facts.GPU.Err)
		case kv["gpuexit"] == "" && (facts.GPU.Err != nil || facts.GPU.Devices != nil):
			t.Fatalf("no nvidia-smi, yet GPUs %+v, %v", facts.GPU.Devices, facts.GPU.Err)
		case kv["gpuexit"] == "0" && facts.GPU.Err == nil && len(facts.GPU.Devices) != len(gpuLines):
			t.Fatalf("%d GPUs from %d gpu= lines", len(facts.GPU.Devices), len(gpuLines))
		}
		again, err := parseHostFacts([]byte(printFacts(facts, kv["gpuexit"])))
		if err != nil || !equalFacts(again, facts) {
			t.Fatalf("printed back: %+v, %v; want %+v", again, err, facts)
		}
	})
}

// readFacts is a plain reading of hostFactsCommand's output: its key=value lines, the
// non-blank gpu= lines, and a key given twice, if any.
func readFacts(out string) (kv map[string]string, gpus []string, twice string) {
	kv = map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSuffix(l, "\r"), "=")
		switch {
		case k == "gpu":
			if strings.TrimSpace(v) != "" {
				gpus = append(gpus, v)
			}
		case k == "gpuuse" || !ok: // gpuuse= lines are many, for metrics
		default:
			if _, dup := kv[k]; dup {
				twice = k
			}
			kv[k] = strings.TrimSpace(v)
		}
	}
	return kv, gpus, twice
}

// printFacts prints facts as hostFactsCommand does.
func printFacts(f hostFacts, gpuExit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cpus=%d\nmemkb=%d\ndiskkb=%d\nkernel=%s\narch=%s\nos=%s\nosimage=%s\nmachineid=%s\nbootid=%s\n",
		f.CPUs, f.MemoryBytes/1024, f.DiskBytes/1024, f.Kernel, f.Arch, f.OperatingSystem, f.OSImage, f.MachineID, f.BootID)
	if gpuExit != "" {
		if f.GPU.Err != nil {
			gpuExit = "1"
		}
		fmt.Fprintf(&b, "gpuexit=%s\n", gpuExit)
	}
	for _, g := range f.GPU.Devices {
		fmt.Fprintf(&b, "gpu=%d, %s, %s, %d, %s\n", g.Index, g.UUID, g.Name, g.MemoryMiB, g.Driver)
	}
	return b.String()
}

func equalFacts(a, b hostFacts) bool {
	return a.CPUs == b.CPUs && a.MemoryBytes == b.MemoryBytes && a.DiskBytes == b.DiskBytes && a.Kernel == b.Kernel &&
		a.OSImage == b.OSImage && a.Arch == b.Arch && a.MachineID == b.MachineID && a.BootID == b.BootID &&
		a.OperatingSystem == b.OperatingSystem && slices.Equal(a.GPU.Devices, b.GPU.Devices) && (a.GPU.Err == nil) == (b.GPU.Err == nil)
}

// Output of nvidia-smi's listing on an 8x A100 80GB SXM4 machine, as package gpu's tests
// hold it.
const smiA100x8 = `0, GPU-68f6855b-e57c-6591-ce3b-3a6d9c409ac6, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
1, GPU-f7d0c1cb-95cd-a4d7-8269-68fc92d55bf2, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
2, GPU-22c06ab8-71eb-55e7-2d46-11bb4b0b5c1b, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
3, GPU-daf8a235-d587-a750-61d7-84c6d4cb5077, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
4, GPU-718ce73f-c806-754d-01a8-7298f0b79f4b, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
5, GPU-c2019690-b23c-063a-a57c-e5ae9fec7aee, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
6, GPU-8972604b-e6ea-372b-1690-977026fa8ee8, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
7, GPU-37e08a0b-6eb7-ebd7-25a6-348f982672fd, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
`

func TestParseHostFactsGPUs(t *testing.T) {
	t.Parallel()
	base := "cpus=8\nmemkb=65843212\ndiskkb=1031018216\narch=x86_64\nos=Linux\n"
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(smiA100x8), "\n") {
		lines = append(lines, "gpu="+l)
	}
	f, err := parseHostFacts([]byte(base + "gpuexit=0\n" + strings.Join(lines, "\n") + "\n"))
	if err != nil || f.GPU.Err != nil || len(f.GPU.Devices) != 8 || f.GPU.Devices[7].Index != 7 {
		t.Errorf("8x A100: %d GPUs, %v, %v", len(f.GPU.Devices), f.GPU.Err, err)
	}
	f, err = parseHostFacts([]byte(base))
	if err != nil || f.GPU.Err != nil || f.GPU.Devices != nil {
		t.Errorf("no nvidia-smi: %+v, %v", f, err)
	}
	f, err = parseHostFacts([]byte(base + "gpuexit=6\ngpu=No devices were found\n"))
	if err != nil || f.GPU.Err == nil || f.GPU.Devices != nil {
		t.Errorf("nvidia-smi failing: the host facts stand, the GPUs do not: %+v, %v", f, err)
	}
	if cmd := hostFactsCommand("/var/lib/containerd", ""); strings.Contains(cmd, "gpu") {
		t.Errorf("GPUs off, yet the command asks for them: %s", cmd)
	}
	if cmd := hostFactsCommand("/var/lib/containerd", gpu.FactsCommand("/opt/bin/nvidia-smi")); !strings.Contains(cmd, "'/opt/bin/nvidia-smi' --query-gpu=index,uuid,name,") {
		t.Errorf("command does not run the nvidia-smi given: %s", cmd)
	}
}

// The facts command's gpuuse= lines reach the facts; a host without them has no usage.
func TestHostFactsGPUUsage(t *testing.T) {
	t.Parallel()
	base := "cpus=2\nmemkb=1024\ndiskkb=1024\nkernel=6.1\narch=x86_64\nos=Linux\n"
	f, err := parseHostFacts([]byte(base + "gpuexit=0\ngpu=0, GPU-aa, NVIDIA A10G, 23028, 550.54.15\ngpuuse=0, GPU-aa, 42, 1000, 23028\n"))
	if err != nil || len(f.GPU.Devices) != 1 || len(f.GPU.Usage) != 1 || f.GPU.Usage[0].UtilizationPercent != 42 {
		t.Fatalf("facts %+v, %v", f, err)
	}
	if f, err := parseHostFacts([]byte(base)); err != nil || f.GPU.Usage != nil {
		t.Errorf("no GPUs: usage %+v, %v", f.GPU.Usage, err)
	}
}
