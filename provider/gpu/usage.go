package gpu

import (
	"slices"
	"strconv"
	"strings"
)

// Usage is how busy one GPU was when nvidia-smi last answered, with the host facts (every
// minute). It feeds Satellite's own metrics only: nothing is scheduled by it.
type Usage struct {
	Index int
	UUID  string
	// UtilizationPercent is nvidia-smi's utilization.gpu (the share of the last sample period
	// in which a kernel ran), -1 when nvidia-smi does not know ([N/A], [Not Supported]).
	UtilizationPercent int
	// MemoryUsedMiB and MemoryTotalMiB are -1 when unknown.
	MemoryUsedMiB, MemoryTotalMiB int64
}

// usageQuery is the second query of FactsCommand: no name, so every line has
// exactly these five fields.
const usageQuery = "--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits"

// usageCommand asks nvidia-smi (bin, quoted) for the usage once the first query, whose
// exit status is in $e, succeeded, and prints one "gpuuse=<line>" per GPU. It gets 5 seconds
// where timeout(1) is there ($t is FactsCommand's): the whole facts command must end
// within the node check's period. A failure prints nothing: usage is only reported.
func usageCommand(bin string) string {
	return `if [ "$e" = 0 ] && use=$(${t:+timeout 5} ` + bin + ` ` + usageQuery + ` 2>/dev/null); then ` +
		`printf '%s\n' "$use" | sed 's/^/gpuuse=/'; fi`
}

// parseUsage reads usageQuery's lines, "0, GPU-<uuid>, 37, 1024, 81920", in index
// order. Lines it cannot read, and a GPU listed twice, are left out.
func parseUsage(lines []string) []Usage {
	var out []Usage
	seen := map[int]bool{}
	for _, line := range lines {
		u, ok := parseUsageLine(line)
		if !ok || seen[u.Index] || len(out) >= maxGPUs {
			continue
		}
		seen[u.Index] = true
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Usage) int { return a.Index - b.Index })
	return out
}

func parseUsageLine(line string) (Usage, bool) {
	f := strings.Split(line, ",")
	if len(f) != 5 {
		return Usage{}, false
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	idx, err := strconv.Atoi(f[0])
	if err != nil || idx < 0 || idx >= maxGPUs || !validUUID(f[1]) {
		return Usage{}, false
	}
	util, ok1 := usageNumber(f[2], 100)
	used, ok2 := usageNumber(f[3], 1<<30)
	total, ok3 := usageNumber(f[4], 1<<30)
	if !ok1 || !ok2 || !ok3 {
		return Usage{}, false
	}
	return Usage{Index: idx, UUID: f[1], UtilizationPercent: int(util), MemoryUsedMiB: used, MemoryTotalMiB: total}, true
}

// usageNumber reads a count up to limit, or -1 for nvidia-smi's "[N/A]" and "[Not Supported]".
func usageNumber(s string, limit int64) (int64, bool) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return -1, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > limit {
		return 0, false
	}
	return n, true
}
