// Package layout holds a test of the repository's layout rules (docs/architecture.md, issue
// 18): packages import only downward, no non-test file is over 400 lines and no function over
// 60. It reads the module with `go list` and go/parser, so anyone can rerun it with
// `go test ./test/layout`; the violations that today's code still has are listed in
// testdata/exceptions.txt, and the test fails when one of them is gone, so the list only
// shrinks.
package layout
