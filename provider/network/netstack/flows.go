package netstack

import "sync"

// flows bounds and tracks the flows in progress, so that Run can wait for every flow it
// admitted; after close it admits none.
type flows struct {
	mu     sync.Mutex
	n, max int
	closed bool
	wg     sync.WaitGroup
}

// acquire admits a flow, which must call release when it ends.
func (f *flows) acquire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.n >= f.max {
		return false
	}
	f.n++
	f.wg.Add(1)
	return true
}

func (f *flows) release() {
	f.mu.Lock()
	f.n--
	f.mu.Unlock()
	f.wg.Done()
}

func (f *flows) open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *flows) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

func (f *flows) wait() { f.wg.Wait() }
