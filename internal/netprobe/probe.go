// Package netprobe measures TCP and UDP paths for integration tests: bulk throughput each
// way, request round trips, and a UDP echo. The same functions run in the test process and,
// built as cmd/netprobe, inside a test's network namespace.
package netprobe

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Mode is what a connection does.
type Mode string

const (
	Source Mode = "source" // writes N bytes, half-closes, waits for the peer's close
	Sink   Mode = "sink"   // reads to EOF, then closes
	Echo   Mode = "echo"   // writes back what it reads
)

var chunk = make([]byte, 128<<10)

// Send writes n bytes, half-closes and returns when the peer has read them all and closed.
func Send(c net.Conn, n int64) (time.Duration, error) {
	start := time.Now()
	for left := n; left > 0; {
		m, err := c.Write(chunk[:min(left, int64(len(chunk)))])
		if err != nil {
			return 0, fmt.Errorf("send: %w", err)
		}
		left -= int64(m)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return 0, fmt.Errorf("half-close: %w", err)
		}
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		return 0, fmt.Errorf("wait for the peer's close: %w", err)
	}
	return time.Since(start), nil
}

// Receive reads to EOF and returns the bytes read and the time it took.
func Receive(c net.Conn) (int64, time.Duration, error) {
	start := time.Now()
	n, err := io.CopyBuffer(io.Discard, c, make([]byte, 128<<10))
	return n, time.Since(start), err
}

// RoundTrips sends count requests of size bytes, each after the previous one's echo, and
// returns the round trips sorted.
func RoundTrips(c net.Conn, count, size int) ([]time.Duration, error) {
	req, resp := make([]byte, size), make([]byte, size)
	rtts := make([]time.Duration, 0, count)
	for range count {
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil, err
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	return rtts, nil
}

// Percentile is the p-th percentile of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// Serve answers each connection of ln in mode (Source writes n bytes, then closes) until ln
// closes; then it closes the connections still open and returns after they have ended.
func Serve(ln net.Listener, mode Mode, n int64) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			mu.Lock()
			for c := range conns {
				_ = c.Close()
			}
			mu.Unlock()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			serveConn(c, mode, n)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			_ = c.Close()
		})
	}
}

func serveConn(c net.Conn, mode Mode, n int64) {
	switch mode {
	case Source:
		_, _ = Send(c, n)
	case Sink:
		_, _, _ = Receive(c)
	case Echo:
		_, _ = io.Copy(c, c)
	}
}

// UDPEcho sends msg to c's peer and returns the reply, waiting up to timeout.
func UDPEcho(c net.Conn, msg []byte, timeout time.Duration) ([]byte, error) {
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	return buf[:n], err
}
