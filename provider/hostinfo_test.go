package provider

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
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
		case facts.GPUError != nil && facts.GPUs != nil:
			t.Fatalf("GPUs %+v along with the error %v", facts.GPUs, facts.GPUError)
		case kv["gpuexit"] == "" && (facts.GPUError != nil || facts.GPUs != nil):
			t.Fatalf("no nvidia-smi, yet GPUs %+v, %v", facts.GPUs, facts.GPUError)
		case kv["gpuexit"] == "0" && facts.GPUError == nil && len(facts.GPUs) != len(gpuLines):
			t.Fatalf("%d GPUs from %d gpu= lines", len(facts.GPUs), len(gpuLines))
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
		if f.GPUError != nil {
			gpuExit = "1"
		}
		fmt.Fprintf(&b, "gpuexit=%s\n", gpuExit)
	}
	for _, g := range f.GPUs {
		fmt.Fprintf(&b, "gpu=%d, %s, %s, %d, %s\n", g.Index, g.UUID, g.Name, g.MemoryMiB, g.Driver)
	}
	return b.String()
}

func equalFacts(a, b hostFacts) bool {
	return a.CPUs == b.CPUs && a.MemoryBytes == b.MemoryBytes && a.DiskBytes == b.DiskBytes && a.Kernel == b.Kernel &&
		a.OSImage == b.OSImage && a.Arch == b.Arch && a.MachineID == b.MachineID && a.BootID == b.BootID &&
		a.OperatingSystem == b.OperatingSystem && slices.Equal(a.GPUs, b.GPUs) && (a.GPUError == nil) == (b.GPUError == nil)
}
