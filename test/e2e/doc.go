// Package e2e drives the local environment (hack/dev-up.sh) the way a user does: kubectl and
// client-go against a real control plane, pods on Satellite nodes, and checks of what is left
// on the remote host through its CRI over SSH and its filesystem.
//
// The tests need the environment's coordinates in _output/dev/env (or the file named by
// SATELLITE_DEV_ENV). `make test` brings the environment up first. Without it the tests skip
// under -short and fail otherwise.
package e2e
