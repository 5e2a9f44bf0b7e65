package gpu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Output of `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version
// --format=csv,noheader,nounits` in the shape NVIDIA's driver prints it: an 8x A100 80GB SXM4
// machine (DGX/HGX A100, driver 535) and a 1x H100 80GB HBM3 instance (driver 550). Names,
// memory.total in MiB (81920 on the A100 80GB, 81559 on the H100) and driver versions as
// these machines report them; the UUIDs are made up in NVML's format.
const (
	smiA100x8 = `0, GPU-68f6855b-e57c-6591-ce3b-3a6d9c409ac6, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
1, GPU-f7d0c1cb-95cd-a4d7-8269-68fc92d55bf2, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
2, GPU-22c06ab8-71eb-55e7-2d46-11bb4b0b5c1b, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
3, GPU-daf8a235-d587-a750-61d7-84c6d4cb5077, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
4, GPU-718ce73f-c806-754d-01a8-7298f0b79f4b, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
5, GPU-c2019690-b23c-063a-a57c-e5ae9fec7aee, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
6, GPU-8972604b-e6ea-372b-1690-977026fa8ee8, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
7, GPU-37e08a0b-6eb7-ebd7-25a6-348f982672fd, NVIDIA A100-SXM4-80GB, 81920, 535.104.05
`
	smiH100x1 = "0, GPU-5fadc006-00bd-bb13-e225-1fd3a5bb47b6, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n"
)

// smiCases are nvidia-smi outputs and the GPUs they list; smiBad outputs that must be
// refused. The fuzz target starts from them too.
var smiCases = map[string]struct {
	in   string
	want []Device
}{
	"nothing":                {"", nil},
	"blank lines and CRLF":   {"\r\n1, GPU-1fd3e842-4f78-e639-9085-04948890fd84, Tesla T4, 15360, 470.82.01\r\n\r\n", []Device{{1, "GPU-1fd3e842-4f78-e639-9085-04948890fd84", "Tesla T4", 15360, "470.82.01"}}},
	"memory [N/A]":           {"0, GPU-b41e9a00-ef29-c009-ce06-8d4f4f2cf07d, NVIDIA GH200 480GB, [N/A], 560.35.03", []Device{{0, "GPU-b41e9a00-ef29-c009-ce06-8d4f4f2cf07d", "NVIDIA GH200 480GB", 0, "560.35.03"}}},
	"comma in the name":      {"0, GPU-c440cc84-b155-71d9-a211-95f30e5edb2d, Some GPU, Rev 2, 1024, 550.90.07", []Device{{0, "GPU-c440cc84-b155-71d9-a211-95f30e5edb2d", "Some GPU, Rev 2", 1024, "550.90.07"}}},
	"sorted by index":        {"1,GPU-aa,A10G,23028,550.127.05\n0,GPU-bb,A10G,23028,550.127.05", []Device{{0, "GPU-bb", "A10G", 23028, "550.127.05"}, {1, "GPU-aa", "A10G", 23028, "550.127.05"}}},
	"extra spaces and a tab": {"  0 ,\tGPU-aa ,  NVIDIA L4 , 23034 , 550.54.15  ", []Device{{0, "GPU-aa", "NVIDIA L4", 23034, "550.54.15"}}},
}

var smiBad = []string{
	"No devices were found",
	"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
	"0, GPU-aa, NVIDIA A100-SXM4-80GB, 81920",                                   // a field short
	"x, GPU-aa, NVIDIA A100-SXM4-80GB, 81920, 535.104.05",                       // index
	"-1, GPU-aa, NVIDIA A100-SXM4-80GB, 81920, 535.104.05",                      // index
	"0, 8c4f7a1e, NVIDIA A100-SXM4-80GB, 81920, 535.104.05",                     // UUID
	"0, GPU-aa;rm -rf /, NVIDIA A100-SXM4-80GB, 81920, 535.104.05",              // UUID
	"0, GPU-aa, NVIDIA A100-SXM4-80GB, 80 GiB, 535.104.05",                      // memory
	"0, GPU-aa, NVIDIA A100-SXM4-80GB, -5, 535.104.05",                          // memory
	"0, GPU-aa, , 81920, 535.104.05",                                            // name
	"0, GPU-aa, NVIDIA A100-SXM4-80GB, 81920, [N/A]",                            // driver
	"0, GPU-aa, A, 1, 1\n0, GPU-bb, A, 1, 1",                                    // index twice
	"0, GPU-aa, A, 1, 1\n1, GPU-aa, A, 1, 1",                                    // UUID twice
	"index, uuid, name, memory.total [MiB], driver_version\n0, GPU-aa, A, 1, 1", // a header
}

func TestParseNvidiaSMI(t *testing.T) {
	t.Parallel()
	gpus, err := parseNvidiaSMI([]byte(smiA100x8))
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("%d GPUs, want 8", len(gpus))
	}
	for i, g := range gpus {
		if g.Index != i || g.Name != "NVIDIA A100-SXM4-80GB" || g.MemoryMiB != 81920 || g.Driver != "535.104.05" || !strings.HasPrefix(g.UUID, "GPU-") {
			t.Errorf("GPU %d = %+v", i, g)
		}
	}
	if gpus[3].UUID != "GPU-daf8a235-d587-a750-61d7-84c6d4cb5077" {
		t.Errorf("GPU 3 UUID = %q", gpus[3].UUID)
	}
	h, err := parseNvidiaSMI([]byte(smiH100x1))
	want := Device{Index: 0, UUID: "GPU-5fadc006-00bd-bb13-e225-1fd3a5bb47b6", Name: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559, Driver: "550.54.15"}
	if err != nil || len(h) != 1 || h[0] != want {
		t.Errorf("H100: %+v, %v; want %+v", h, err, want)
	}

	for name, tt := range smiCases {
		got, err := parseNvidiaSMI([]byte(tt.in))
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: GPU %d = %+v, want %+v", name, i, got[i], tt.want[i])
			}
		}
	}

	for _, bad := range smiBad {
		if got, err := parseNvidiaSMI([]byte(bad)); err == nil {
			t.Errorf("parseNvidiaSMI(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestGPUFacts(t *testing.T) {
	t.Parallel()
	if g, err := readDevices("", nil); g != nil || err != nil {
		t.Errorf("no nvidia-smi: %v, %v; want no GPUs and no error", g, err)
	}
	if g, err := readDevices("0", strings.Split(smiH100x1, "\n")); len(g) != 1 || err != nil {
		t.Errorf("H100: %v, %v", g, err)
	}
	_, err := readDevices("9", []string{"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", "second line"})
	if err == nil || err.Error() != "nvidia-smi exited with status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." {
		t.Errorf("failed nvidia-smi: %v", err)
	}
	if _, err := readDevices("124", []string{""}); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("timed out nvidia-smi: %v", err)
	}
}

func TestGPULabels(t *testing.T) {
	t.Parallel()
	a100, _ := parseNvidiaSMI([]byte(smiA100x8))
	h100, _ := parseNvidiaSMI([]byte(smiH100x1))
	for name, tt := range map[string]struct {
		gpus []Device
		want map[string]string
	}{
		"8x A100": {a100, map[string]string{
			"nvidia.com/gpu.count": "8", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.memory": "81920",
			"nvidia.com/cuda.driver.major": "535", "nvidia.com/cuda.driver.minor": "104", "nvidia.com/cuda.driver.rev": "05",
			"nvidia.com/cuda.driver-version.major": "535", "nvidia.com/cuda.driver-version.minor": "104",
			"nvidia.com/cuda.driver-version.revision": "05", "nvidia.com/cuda.driver-version.full": "535.104.05",
			LabelAccelerator: "nvidia-a100-sxm4-80gb",
		}},
		"1x H100": {h100, map[string]string{
			"nvidia.com/gpu.count": "1", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559",
			"nvidia.com/cuda.driver.major": "550", "nvidia.com/cuda.driver.minor": "54", "nvidia.com/cuda.driver.rev": "15",
			"nvidia.com/cuda.driver-version.major": "550", "nvidia.com/cuda.driver-version.minor": "54",
			"nvidia.com/cuda.driver-version.revision": "15", "nvidia.com/cuda.driver-version.full": "550.54.15",
			LabelAccelerator: "nvidia-h100-80gb-hbm3",
		}},
		"two-part driver, no memory, odd name": {[]Device{{UUID: "GPU-aa", Name: "NVIDIA GeForce RTX 4090 (rev a1)", Driver: "550.120"}}, map[string]string{
			"nvidia.com/gpu.count": "1", "nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090-rev-a1",
			"nvidia.com/cuda.driver.major": "550", "nvidia.com/cuda.driver.minor": "120", "nvidia.com/cuda.driver.rev": "",
			"nvidia.com/cuda.driver-version.major": "550", "nvidia.com/cuda.driver-version.minor": "120",
			"nvidia.com/cuda.driver-version.revision": "", "nvidia.com/cuda.driver-version.full": "550.120",
			LabelAccelerator: "nvidia-geforce-rtx-4090-rev-a1",
		}},
		"none": {nil, nil},
	} {
		got := Labels(tt.gpus)
		if len(got) != len(tt.want) {
			t.Errorf("%s: labels %v, want %v", name, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got[k], v)
			}
		}
	}
}

func TestAcceleratorLabel(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"NVIDIA A10G": "nvidia-a10g", "Tesla T4": "nvidia-tesla-t4", "NVIDIA  A100-SXM4-80GB": "nvidia-a100-sxm4-80gb",
		"NVIDIA GH200 480GB": "nvidia-gh200-480gb", "": "", "  ": "",
	} {
		if got := acceleratorLabel(name); got != want {
			t.Errorf("acceleratorLabel(%q) = %q, want %q", name, got, want)
		}
	}
}

// A failing nvidia-smi keeps the GPUs last read; a working one that lists fewer does not.
func TestKeepGPUs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h100, _ := parseNvidiaSMI([]byte(smiH100x1))
	m := New(Config{Mode: ModeCDI}, nil, nil)
	m.Observe(ctx, Reading{Devices: h100})
	m.Observe(ctx, Reading{Err: errors.New("nvidia-smi timed out")})
	if len(m.Devices()) != 1 {
		t.Error("a failing nvidia-smi dropped the GPUs last read")
	}
	m.Observe(ctx, Reading{})
	if len(m.Devices()) != 0 {
		t.Error("GPUs gone from a working nvidia-smi were kept")
	}
	// With GPUs off nothing is kept or advertised.
	off := New(Config{}, nil, nil)
	off.Observe(ctx, Reading{Devices: h100})
	if len(off.Devices()) != 0 || off.FactsCommand() != "" {
		t.Errorf("GPUs off: devices %v, command %q", off.Devices(), off.FactsCommand())
	}
}

// FuzzParseNvidiaSMI: any output either fails with no GPUs, or every non-blank line is one
// GPU, the one parseGPULine reads from that line alone, with distinct indices in order, UUIDs
// safe in an env list, and labels a node can carry; printed back as nvidia-smi prints them,
// the GPUs parse to the same GPUs.
func FuzzParseNvidiaSMI(f *testing.F) {
	for _, s := range []string{smiA100x8, smiH100x1, "0, GPU-aa, A, [N/A], 1", "0,GPU-a,x,y,z,1,2"} {
		f.Add([]byte(s))
	}
	for _, tt := range smiCases {
		f.Add([]byte(tt.in))
	}
	for _, s := range smiBad {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		gpus, err := parseNvidiaSMI(out)
		if err != nil {
			if gpus != nil {
				t.Fatalf("GPUs %+v along with the error %v", gpus, err)
			}
			return
		}
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		if len(gpus) != len(lines) {
			t.Fatalf("%d GPUs from %d lines: %+v", len(gpus), len(lines), gpus)
		}
		alone := map[int]Device{}
		for _, l := range lines {
			g, err := parseGPULine(l)
			if err != nil {
				t.Fatalf("line %q refused on its own (%v), accepted in the output", l, err)
			}
			alone[g.Index] = g
		}
		var printed strings.Builder
		uuids := map[string]bool{}
		for i, g := range gpus {
			if i > 0 && g.Index <= gpus[i-1].Index {
				t.Fatalf("indices not distinct and sorted: %+v", gpus)
			}
			if g != alone[g.Index] {
				t.Fatalf("GPU %+v, but its line alone reads %+v", g, alone[g.Index])
			}
			if g.Index < 0 || g.Index >= maxGPUs || !validUUID(g.UUID) || strings.ContainsAny(g.UUID, ", =") || uuids[g.UUID] ||
				g.Name == "" || g.Driver == "" || g.MemoryMiB < 0 {
				t.Fatalf("bad GPU %+v", g)
			}
			uuids[g.UUID] = true
			fmt.Fprintf(&printed, "%d, %s, %s, %d, %s\n", g.Index, g.UUID, g.Name, g.MemoryMiB, g.Driver)
		}
		again, err := parseNvidiaSMI([]byte(printed.String()))
		if err != nil || !slices.Equal(again, gpus) {
			t.Fatalf("printed back as %q: %+v, %v; want %+v", printed.String(), again, err, gpus)
		}
		for k, v := range Labels(gpus) {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				t.Fatalf("label key %q: %v", k, errs)
			}
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Fatalf("label %s=%q: %v", k, v, errs)
			}
		}
	})
}

func TestGPUChanges(t *testing.T) {
	t.Parallel()
	a := Device{Index: 0, UUID: "GPU-a"}
	b := Device{Index: 1, UUID: "GPU-b"}
	c := Device{Index: 1, UUID: "GPU-c"}
	uuids := func(gs []Device) (s []string) {
		for _, g := range gs {
			s = append(s, g.UUID)
		}
		return s
	}
	for _, tt := range []struct {
		name        string
		old, cur    []Device
		lost, added []string
	}{
		{"same", []Device{a, b}, []Device{a, b}, nil, nil},
		{"one lost", []Device{a, b}, []Device{a}, []string{"GPU-b"}, nil},
		{"all lost", []Device{a, b}, nil, []string{"GPU-a", "GPU-b"}, nil},
		{"replaced in its slot", []Device{a, b}, []Device{a, c}, []string{"GPU-b"}, []string{"GPU-c"}},
		{"first reading", nil, []Device{a}, nil, []string{"GPU-a"}},
		{"renumbered only", []Device{a, b}, []Device{{Index: 0, UUID: "GPU-b"}, {Index: 1, UUID: "GPU-a"}}, nil, nil},
	} {
		lost, added := changes(tt.old, tt.cur)
		if got := uuids(lost); !slices.Equal(got, tt.lost) {
			t.Errorf("%s: lost %v, want %v", tt.name, got, tt.lost)
		}
		if got := uuids(added); !slices.Equal(got, tt.added) {
			t.Errorf("%s: added %v, want %v", tt.name, got, tt.added)
		}
	}
}
