package netprobe

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"
)

// ServeHTTP answers every request on ln with a 2-byte body until ln closes.
func ServeHTTP(ln net.Listener) error {
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// HTTPRoundTrips makes count GETs of url, one after another on one kept-alive connection of
// dial, and returns their round trips sorted.
func HTTPRoundTrips(dial func(network, addr string) (net.Conn, error), url string, count int) ([]time.Duration, error) {
	tr := &http.Transport{Dial: dial, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	rtts := make([]time.Duration, 0, count)
	for i := range count + 1 {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if i > 0 { // the first pays for the connection
			rtts = append(rtts, time.Since(start))
		}
	}
	slices.Sort(rtts)
	return rtts, nil
}
