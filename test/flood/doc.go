// Package flood sends a bounded load of HTTP requests at a fixed rate, for the end-to-end test
// that floods Satellite's kubelet API with requests it must refuse (test/e2e/flood_test.go).
//
// It is bounded in every direction: a number of requests (rate × duration), at most
// MaxInFlight at once (requests that would exceed it are counted as not sent, never queued),
// and only to addresses the caller lists, given as IP literals (no name resolution).
package flood
