// Package fake holds the in-memory host and container runtime the provider's unit tests run
// against: Host stands for remote.Host (files, commands, streams, TCP dials) and Runtime for
// remote.Runtime (the CRI v1 RuntimeService and ImageService clients).
//
// Both keep real state (files and directories; sandboxes, containers and images with the
// CRI's state transitions), record every call, and let a test replace any one answer with a
// hook function. A method a test did not prepare for works on that state or returns an error
// that says what is missing; none panics. Errors carry remote's sentinels (remote.ErrNotFound,
// remote.ErrUnimplemented, *remote.ExitError) as remote's own types do, so the code under test
// sees what it would see from a real host.
//
// k8s.io/cri-api/pkg/apis/testing's FakeRuntimeService and FakeImageService are not used:
// they implement the kubelet's internal CRI interface, not the gRPC clients Satellite calls,
// their errors are plain strings rather than remote's sentinels, and their ExecSync cannot
// answer an exit code; an adapter would be as long as this fake and still need those answers.
// It mirrors the kubelet's pkg/kubelet/container/testing fakes in purpose.
package fake
