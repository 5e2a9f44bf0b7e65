package main

import (
	"fmt"
	"strings"
	"time"
)

// table collects figures: rows in order, a column per node.
type table struct {
	rows []string
	cell map[string]map[string]string
}

func (t *table) set(row, col, v string) {
	if t.cell == nil {
		t.cell = map[string]map[string]string{}
	}
	if t.cell[row] == nil {
		t.cell[row] = map[string]string{}
		t.rows = append(t.rows, row)
	}
	t.cell[row][col] = v
}

func (t *table) dist(row, col string, d []time.Duration) {
	sortDurations(d)
	t.set(row+" p50 / p90 / p99", col, fmt.Sprintf("%s / %s / %s", ms(pct(d, 50)), ms(pct(d, 90)), ms(pct(d, 99))))
	t.set(row+" p50 (raw)", col, fmt.Sprintf("%d", pct(d, 50)))
}

func (t *table) print() {
	fmt.Printf("\n%-44s | %-34s | %-34s\n", "figure", "Satellite", "kubelet (reference)")
	fmt.Println(strings.Repeat("-", 118))
	for _, r := range t.rows {
		if strings.HasSuffix(r, "(raw)") {
			continue
		}
		fmt.Printf("%-44s | %-34s | %-34s\n", r, t.cell[r]["Satellite"], t.cell[r]["kubelet"])
	}
	fmt.Println("\nratios (Satellite / kubelet):")
	for _, r := range t.rows {
		a, b := t.cell[r]["Satellite"], t.cell[r]["kubelet"]
		if !strings.HasSuffix(r, "(raw)") && !strings.HasPrefix(r, "log throughput") || a == "" || b == "" {
			continue
		}
		var x, y float64
		fmt.Sscanf(a, "%f", &x)
		fmt.Sscanf(b, "%f", &y)
		if y > 0 {
			fmt.Printf("  %-44s %.2f\n", strings.TrimSuffix(r, " (raw)"), x/y)
		}
	}
}
