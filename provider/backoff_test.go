package provider

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := newBackoff(10*time.Second, 5*time.Minute)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if w := b.wait("p/c", t0, t0); w != 0 {
		t.Fatalf("first try waits %v, want 0", w)
	}
	b.next("p/c", t0)
	// Exits 1 s after the first restart: waits the remaining 10 s from its exit.
	exit := t0.Add(time.Second)
	if w := b.wait("p/c", exit, exit.Add(2*time.Second)); w != 8*time.Second {
		t.Fatalf("wait = %v, want 8s", w)
	}
	now := exit.Add(10 * time.Second)
	if w := b.wait("p/c", exit, now); w != 0 {
		t.Fatalf("after the delay wait = %v, want 0", w)
	}
	want := []time.Duration{20, 40, 80, 160, 300, 300}
	for _, d := range want {
		b.next("p/c", now)
		if w := b.wait("p/c", now, now); w != d*time.Second {
			t.Fatalf("wait = %v, want %v", w, d*time.Second)
		}
		now = now.Add(d * time.Second)
	}
	// After more than twice the maximum without a try, it starts over.
	later := now.Add(11 * time.Minute)
	if w := b.wait("p/c", later, later); w != 0 {
		t.Fatalf("after reset wait = %v, want 0", w)
	}
	b.next("p/c", later)
	if w := b.wait("p/c", later, later); w != 10*time.Second {
		t.Fatalf("after reset next wait = %v, want 10s", w)
	}
	b.forget("p/")
	if w := b.wait("p/c", later, later); w != 0 {
		t.Fatalf("after forget wait = %v, want 0", w)
	}
}
