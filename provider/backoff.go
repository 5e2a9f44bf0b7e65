package provider

import (
	"sync"
	"time"
)

// backoff is the kubelet's container restart back-off
// (pkg/kubelet/kuberuntime: 10 s doubling to 5 min; an entry is forgotten once the thing it
// guards has gone well for twice the maximum, so a container that ran 10 minutes starts over).
type backoff struct {
	initial, max time.Duration

	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	last  time.Time // when the delay was last raised
}

func newBackoff(initial, max time.Duration) *backoff {
	return &backoff{initial: initial, max: max, entries: map[string]*backoffEntry{}}
}

// wait returns how much longer key must wait, counting from since (the container's exit, or
// the failed pull), before the next try; 0 means try now.
func (b *backoff) wait(key string, since, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return 0
	}
	if now.Sub(e.last) > 2*b.max {
		delete(b.entries, key)
		return 0
	}
	if left := since.Add(e.delay).Sub(now); left > 0 {
		return left
	}
	return 0
}

// next records a try: the next wait doubles, up to max.
func (b *backoff) next(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	switch {
	case !ok || now.Sub(e.last) > 2*b.max:
		b.entries[key] = &backoffEntry{delay: b.initial, last: now}
	default:
		e.delay = min(2*e.delay, b.max)
		e.last = now
	}
}

// forget drops every entry whose key starts with prefix (a pod that is gone).
func (b *backoff) forget(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}

// waitLast is wait counted from the last try.
func (b *backoff) waitLast(key string, now time.Time) time.Duration {
	b.mu.Lock()
	e, ok := b.entries[key]
	var last time.Time
	if ok {
		last = e.last
	}
	b.mu.Unlock()
	if !ok {
		return 0
	}
	return b.wait(key, last, now)
}

// delay is the current back-off of key.
func (b *backoff) delay(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return b.initial
}
