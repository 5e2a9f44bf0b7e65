package gpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Output of `nvidia-smi --query-gpu=index,uuid,utilization.gpu,memory.used,memory.total
// --format=csv,noheader,nounits` on a 2x A100 80GB machine running one job, and a GH200
// whose memory nvidia-smi does not report.
const smiUsage = `0, GPU-68f6855b-e57c-6591-ce3b-3a6d9c409ac6, 97, 61440, 81920
1, GPU-f7d0c1cb-95cd-a4d7-8269-68fc92d55bf2, 0, 4, 81920
`

func TestParseGPUUsage(t *testing.T) {
	t.Parallel()
	got := parseUsage(strings.Split(strings.TrimSpace(smiUsage), "\n"))
	want := []Usage{
		{Index: 0, UUID: "GPU-68f6855b-e57c-6591-ce3b-3a6d9c409ac6", UtilizationPercent: 97, MemoryUsedMiB: 61440, MemoryTotalMiB: 81920},
		{Index: 1, UUID: "GPU-f7d0c1cb-95cd-a4d7-8269-68fc92d55bf2", UtilizationPercent: 0, MemoryUsedMiB: 4, MemoryTotalMiB: 81920},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
	na := parseUsage([]string{"0, GPU-b41e9a00-ef29-c009-ce06-8d4f4f2cf07d, [N/A], [Not Supported], [N/A]"})
	if len(na) != 1 || na[0].UtilizationPercent != -1 || na[0].MemoryUsedMiB != -1 || na[0].MemoryTotalMiB != -1 {
		t.Errorf("[N/A] fields: %+v, want -1s", na)
	}
	sorted := parseUsage([]string{"3, GPU-cc, 1, 1, 1", "1, GPU-aa, 1, 1, 1", "1, GPU-bb, 2, 2, 2"})
	if len(sorted) != 2 || sorted[0].Index != 1 || sorted[0].UUID != "GPU-aa" || sorted[1].Index != 3 {
		t.Errorf("sorted and first of an index listed twice: %+v", sorted)
	}
	for _, bad := range []string{
		"", "No devices were found", "0, GPU-aa, 97, 61440",
		"0, GPU-aa, 101, 1, 1", "0, GPU-aa, -1, 1, 1", "0, GPU-aa, 5 %, 1, 1", "x, GPU-aa, 1, 1, 1",
		"0, GPU-aa;reboot, 1, 1, 1", "256, GPU-aa, 1, 1, 1", "0, GPU-aa, 1, 1, 1, 1",
	} {
		if got := parseUsage([]string{bad}); len(got) != 0 {
			t.Errorf("parseUsage(%q) = %+v, want nothing", bad, got)
		}
	}
}

// The facts command asks for the usage after a good listing; Parse reads its gpuuse= lines.
func TestFactsCommandUsage(t *testing.T) {
	t.Parallel()
	r := Parse("0", []string{"0, GPU-aa, NVIDIA A10G, 23028, 550.54.15"}, []string{"0, GPU-aa, 42, 1000, 23028"})
	if r.Err != nil || len(r.Devices) != 1 || len(r.Usage) != 1 || r.Usage[0].UtilizationPercent != 42 {
		t.Fatalf("reading %+v", r)
	}
	if r := Parse("", nil, nil); r.Usage != nil || r.Devices != nil {
		t.Errorf("no GPUs: %+v", r)
	}
	if cmd := FactsCommand("nvidia-smi"); !strings.Contains(cmd, usageQuery) || !strings.Contains(cmd, `[ "$e" = 0 ]`) {
		t.Errorf("the facts command does not ask for the usage after a good listing: %s", cmd)
	}
}

// parseOutput reads FactsCommand's output as the host facts do: by the keys of its lines.
func parseOutput(out string) Reading {
	var exit string
	var devs, use []string
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "gpuexit":
			exit = strings.TrimSpace(v)
		case "gpu":
			devs = append(devs, v)
		case "gpuuse":
			use = append(use, v)
		}
	}
	return Parse(exit, devs, use)
}

// FuzzParseGPUUsage: whatever nvidia-smi prints, the usage is in range, one per index, sorted,
// with UUIDs safe as label values.
func FuzzParseGPUUsage(f *testing.F) {
	f.Add(smiUsage)
	f.Add("0, GPU-aa, [N/A], [N/A], [N/A]\n0, GPU-bb, 1, 2, 3")
	f.Fuzz(func(t *testing.T, out string) {
		got := parseUsage(strings.Split(out, "\n"))
		for i, u := range got {
			if i > 0 && u.Index <= got[i-1].Index {
				t.Fatalf("not one per index, sorted: %+v", got)
			}
			if u.Index < 0 || u.Index >= maxGPUs || !validUUID(u.UUID) || u.UtilizationPercent < -1 || u.UtilizationPercent > 100 ||
				u.MemoryUsedMiB < -1 || u.MemoryTotalMiB < -1 {
				t.Fatalf("bad usage %+v from %q", u, out)
			}
		}
	})
}

// The facts command with stand-ins for nvidia-smi, run by this machine's sh: the usage comes
// with the listing; an nvidia-smi that knows only the listing (an old driver, the end-to-end
// test's stand-in) gives GPUs without usage; a failing one is not asked again.
func TestGPUFactsCommandHere(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("runs sh")
	}
	listing := "0, GPU-aa, NVIDIA A10G, 23028, 550.54.15"
	for name, tt := range map[string]struct {
		script    string
		gpus, use int
		asked     bool
	}{
		"both":         {"case \"$1\" in *utilization*) echo '0, GPU-aa, 42, 1000, 23028';; *) echo '" + listing + "';; esac", 1, 1, true},
		"listing only": {"case \"$1\" in *utilization*) echo unsupported >&2; exit 2;; *) echo '" + listing + "';; esac", 1, 0, true},
		"failing":      {"echo 'NVIDIA-SMI has failed' ; exit 9", 0, 0, false},
	} {
		dir := t.TempDir()
		smi := filepath.Join(dir, "nvidia-smi")
		script := "#!/bin/sh\necho \"$1\" >>" + filepath.Join(dir, "asked") + "\n" + tt.script + "\n"
		if err := os.WriteFile(smi, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", FactsCommand(smi)).Output()
		if err != nil {
			t.Fatalf("%s: the command failed: %v\n%s", name, err, out)
		}
		f := parseOutput(string(out))
		asked, _ := os.ReadFile(filepath.Join(dir, "asked"))
		if len(f.Devices) != tt.gpus || len(f.Usage) != tt.use || strings.Contains(string(asked), "utilization") != tt.asked {
			t.Errorf("%s: %d GPUs, usage %+v, asked %q; want %d GPUs, %d usage, usage asked %v", name, len(f.Devices), f.Usage, asked, tt.gpus, tt.use, tt.asked)
		}
	}
}
