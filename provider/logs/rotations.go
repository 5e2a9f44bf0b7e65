package logs

import "sync"

// rotations tells followers of a log file that the Manager has just rotated it.
type rotations struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newRotations() *rotations { return &rotations{subs: map[string]map[chan struct{}]struct{}{}} }

// subscribe returns a channel that receives after each rotation of file, and the function
// that ends the subscription.
func (r *rotations) subscribe(file string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	r.mu.Lock()
	if r.subs[file] == nil {
		r.subs[file] = map[chan struct{}]struct{}{}
	}
	r.subs[file][c] = struct{}{}
	r.mu.Unlock()
	return c, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs[file], c)
		if len(r.subs[file]) == 0 {
			delete(r.subs, file)
		}
	}
}

func (r *rotations) rotated(file string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.subs[file] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
