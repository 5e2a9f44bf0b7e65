package provider

import (
	"context"
	"time"
)

// every calls f each period until ctx ends; a call in progress finishes first.
func every(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}
