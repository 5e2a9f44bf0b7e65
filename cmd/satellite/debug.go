package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/satellite-vk/satellite/remote"
)

// serveDebug serves Go's pprof and /debug/satellite (goroutines and the SSH link's open
// channels, which leak checks and benchmarks read) until ctx ends.
func serveDebug(ctx context.Context, addr string, host *remote.Host, rt *remote.Runtime, api *atomic.Int64) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/satellite", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Goroutines int          `json:"goroutines"`
			SSH        remote.Stats `json:"ssh"`
			CRICalls   int64        `json:"cri_calls"`
			APICalls   int64        `json:"api_calls"`
		}{runtime.NumGoroutine(), host.Stats(), rt.Calls(), api.Load()})
	})
	return serveHTTP(ctx, "--debug-address", addr, mux)
}

// serveHTTP serves h in plain HTTP on addr (set by flag) until ctx ends.
func serveHTTP(ctx context.Context, flag, addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
