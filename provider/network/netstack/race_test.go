//go:build race

package netstack

// raceEnabled: the race detector slows gVisor several times over, so throughput figures mean nothing.
const raceEnabled = true
