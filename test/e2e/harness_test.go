package e2e

import (
	"sync"
	"testing"
)

// runTargets runs f as a parallel subtest per target and returns when all are done.
func runTargets(t *testing.T, e *env, targets []target, f func(t *testing.T, e *env, tg target)) {
	t.Helper()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			f(t, e, tg)
		})
	}
}

// onTargets runs f per target in parallel (subtests on/<target>), and returns once all have
// finished.
func onTargets(t *testing.T, e *env, targets []target, f func(t *testing.T, e *env, tg target)) {
	t.Helper()
	t.Run("on", func(t *testing.T) { runTargets(t, e, targets, f) })
}

// differential runs f per target as onTargets does and returns what each saw, by target name,
// for the caller to compare (compareWithKubelet). A target whose f did not return (t.Fatal,
// t.Skip) has no entry.
func differential[R any](t *testing.T, e *env, targets []target, f func(t *testing.T, e *env, tg target) R) map[string]R {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]R{}
	onTargets(t, e, targets, func(t *testing.T, e *env, tg target) {
		r := f(t, e, tg)
		mu.Lock()
		seen[tg.name] = r
		mu.Unlock()
	})
	return seen
}

// compareWithKubelet fails the test for every target that saw something else than the
// kubelet's node.
func compareWithKubelet(t *testing.T, seen map[string]string) {
	t.Helper()
	ref, ok := seen["kubelet"]
	if !ok {
		return
	}
	for name, got := range seen {
		if got != ref {
			t.Errorf("%s saw\n%s\nthe kubelet's node\n%s", name, got, ref)
		}
	}
}
