package nodestatus

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/remote"
)

// hostFacts is what Satellite reads of the host to describe the node.
type hostFacts struct {
	CPUs            int64
	MemoryBytes     int64
	DiskBytes       int64 // size of the filesystem holding containerd's root
	Kernel          string
	OSImage         string
	Arch            string // uname -m
	MachineID       string
	BootID          string
	OperatingSystem string // uname -s, lower-case
	// GPU is what nvidia-smi said of the host's GPUs (gpu.FactsCommand's lines).
	GPU gpu.Reading
}

// hostFactsCommand prints one key=value line per fact; it needs only a POSIX shell, coreutils
// and /proc, which every host has. gpuCommand, when not "", lists the GPUs too
// (gpu.FactsCommand).
func hostFactsCommand(containerdRoot, gpuCommand string) string {
	root := remote.Quote(containerdRoot)
	cmds := []string{
		`echo "cpus=$(nproc)"`,
		`echo "memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"`,
		`echo "diskkb=$(df -kP ` + root + ` 2>/dev/null | awk 'NR==2 {print $2}')"`,
		`echo "kernel=$(uname -r)"`,
		`echo "arch=$(uname -m)"`,
		`echo "os=$(uname -s)"`,
		`echo "osimage=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null)"`,
		`echo "machineid=$(cat /etc/machine-id 2>/dev/null)"`,
		`echo "bootid=$(cat /proc/sys/kernel/random/boot_id)"`,
	}
	if gpuCommand != "" {
		cmds = append(cmds, gpuCommand)
	}
	return strings.Join(cmds, "; ")
}

// parseHostFacts reads hostFactsCommand's output. The command prints each fact once: a
// second one is a value that ran over its line (a multi-line os-release name or machine-id)
// and would override the real fact, so it is refused.
func parseHostFacts(out []byte) (hostFacts, error) {
	var f hostFacts
	kv := map[string]string{}
	var gpuLines, useLines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		switch {
		case k == "gpu":
			gpuLines = append(gpuLines, v)
		case k == "gpuuse":
			useLines = append(useLines, v)
		case ok:
			if _, twice := kv[k]; twice {
				return f, fmt.Errorf("host facts: %s given twice in %q", k, out)
			}
			kv[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return f, fmt.Errorf("host facts: %w", err)
	}
	f.GPU = gpu.Parse(kv["gpuexit"], gpuLines, useLines)
	var err error
	if f.CPUs, err = positive(kv, "cpus", 1); err != nil {
		return f, err
	}
	if f.MemoryBytes, err = positive(kv, "memkb", 1024); err != nil {
		return f, err
	}
	if f.DiskBytes, err = positive(kv, "diskkb", 1024); err != nil {
		return f, fmt.Errorf("%w (is the containerd root directory right?)", err)
	}
	f.Kernel, f.OSImage, f.MachineID, f.BootID = kv["kernel"], kv["osimage"], kv["machineid"], kv["bootid"]
	f.Arch = remote.GoArch(kv["arch"])
	f.OperatingSystem = strings.ToLower(kv["os"])
	if f.Arch == "" || f.OperatingSystem == "" {
		return f, fmt.Errorf("host facts: no architecture or OS in %q", out)
	}
	// They are the node's kubernetes.io/arch and kubernetes.io/os labels.
	for _, v := range []string{f.Arch, f.OperatingSystem} {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return f, fmt.Errorf("host facts: architecture or OS %q: %s", v, errs[0])
		}
	}
	return f, nil
}

func positive(kv map[string]string, key string, unit int64) (int64, error) {
	n, err := strconv.ParseInt(kv[key], 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("host facts: %s=%q is not a positive number", key, kv[key])
	}
	return n * unit, nil
}
