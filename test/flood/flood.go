package flood

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"
)

// Config is one flood: Rate requests a second for Duration, GET URL with the bearer token
// Token(i) for the i-th request.
type Config struct {
	URL         string
	Allowed     []string // host:port the URL may name, as IP literals
	Rate        int
	Duration    time.Duration
	MaxInFlight int
	Token       func(i int) string
	Client      *http.Client
}

// Result is what a flood saw.
type Result struct {
	Sent    int         // requests sent
	Skipped int         // requests not sent because MaxInFlight were in flight
	Codes   map[int]int // responses by HTTP status
	Errors  int         // requests without a response (connection errors, timeouts)
	P50     time.Duration
	Max     time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("sent %d (skipped %d), responses %v, errors %d, latency p50 %v max %v",
		r.Sent, r.Skipped, r.Codes, r.Errors, r.P50.Round(time.Millisecond), r.Max.Round(time.Millisecond))
}

// check refuses a configuration that is unbounded or aims anywhere but the allowed addresses.
func (c Config) check() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		return fmt.Errorf("flood target %q: %w", u.Host, err)
	}
	if net.ParseIP(host) == nil || !slices.Contains(c.Allowed, u.Host) {
		return fmt.Errorf("flood target %q is not one of the allowed addresses %v", u.Host, c.Allowed)
	}
	if c.Rate <= 0 || c.Rate > 1000 || c.Duration <= 0 || c.Duration > 5*time.Minute || c.MaxInFlight <= 0 {
		return errors.New("flood: rate must be 1-1000/s, duration up to 5 minutes, MaxInFlight positive")
	}
	return nil
}

// Run sends the flood and returns when every request sent has been answered or failed, or
// ctx ended.
func Run(ctx context.Context, c Config) (Result, error) {
	if err := c.check(); err != nil {
		return Result{}, err
	}
	total := c.Rate * int(c.Duration/time.Second)
	interval := time.Second / time.Duration(c.Rate)
	slots := make(chan struct{}, c.MaxInFlight)
	var mu sync.Mutex
	res := Result{Codes: map[int]int{}}
	var latencies []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		if err := sleepUntil(ctx, start.Add(time.Duration(i)*interval)); err != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			res.Skipped++
			continue
		}
		res.Sent++
		wg.Go(func() {
			defer func() { <-slots }()
			t0 := time.Now()
			code, err := get(ctx, c.Client, c.URL, c.Token(i))
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, d)
			if err != nil {
				res.Errors++
				return
			}
			res.Codes[code]++
		})
	}
	wg.Wait()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	if n := len(latencies); n > 0 {
		res.P50, res.Max = latencies[n/2], latencies[n-1]
	}
	return res, ctx.Err()
}

func get(ctx context.Context, client *http.Client, u, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// sleepUntil waits until t, or returns ctx's error.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
