package fake

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// Runtime is an in-memory CRI v1 runtime: sandboxes, containers and images with the CRI's
// state transitions, and container events for GetContainerEvents. Hooks replaces any
// method's answer. Its zero value is not ready: use NewRuntime.
type Runtime struct {
	// Hooks answer calls in place of the fake's state, one method at a time. Set them before
	// the runtime is used.
	Hooks Hooks

	mu         sync.Mutex
	now        func() time.Time
	next       int
	calls      []Call
	sandboxes  map[string]*sandbox
	containers map[string]*container
	images     map[string]*runtimeapi.Image
	stats      map[string]*runtimeapi.ContainerStats
	events     *eventHub
}

type sandbox struct {
	status *runtimeapi.PodSandboxStatus
	config *runtimeapi.PodSandboxConfig
}

type container struct {
	status    *runtimeapi.ContainerStatus
	sandboxID string
	config    *runtimeapi.ContainerConfig
}

// NewRuntime returns a runtime with no sandboxes, containers or images.
func NewRuntime() *Runtime {
	return &Runtime{
		now:        time.Now,
		sandboxes:  map[string]*sandbox{},
		containers: map[string]*container{},
		images:     map[string]*runtimeapi.Image{},
		stats:      map[string]*runtimeapi.ContainerStats{},
		events:     newEventHub(),
	}
}

// Calls returns the calls made so far, in order: the CRI method and the id or image it names.
func (r *Runtime) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// CallsOf returns the arguments of the calls of one method, in order.
func (r *Runtime) CallsOf(method string) []string {
	var out []string
	for _, c := range r.Calls() {
		if c.Method == method {
			out = append(out, c.Arg)
		}
	}
	return out
}

// Requests returns the requests of the calls of one method, in order; Req is the method's
// request type (runtimeapi.StopContainerRequest for "StopContainer").
func Requests[Req any](r *Runtime, method string) []*Req {
	var out []*Req
	for _, c := range r.Calls() {
		if req, ok := c.Req.(*Req); ok && c.Method == method {
			out = append(out, req)
		}
	}
	return out
}

// Pass, returned by a hook, has the fake answer from its state: a hook that only fails some
// calls returns it for the others. (A hook that called the method again would call itself.)
var Pass = errors.New("fake: answer from the runtime's state")

// do records a call, then answers it with the hook when there is one and it does not Pass,
// and with the fake's state (under the lock) otherwise.
func do[Req, Resp any](ctx context.Context, r *Runtime, method, arg string, in *Req,
	hook func(context.Context, *Req) (*Resp, error), answer func(*Req) (*Resp, error)) (*Resp, error) {
	r.mu.Lock()
	r.calls = append(r.calls, Call{Method: method, Arg: arg, Req: in})
	r.mu.Unlock()
	if hook != nil {
		if resp, err := hook(ctx, in); !errors.Is(err, Pass) {
			return resp, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cri %s: %w", method, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return answer(in)
}

func (r *Runtime) newID(kind string) string {
	r.next++
	return fmt.Sprintf("%s-%d", kind, r.next)
}

// notFoundError is the runtime's NotFound, as remote translates it.
func notFoundError(method, kind, id string) error {
	return fmt.Errorf("cri %s: %s %q: %w", method, kind, id, remote.ErrNotFound)
}

func unimplemented(method string) error {
	return fmt.Errorf("cri %s: fake runtime: %w", method, remote.ErrUnimplemented)
}

// Version names the fake runtime.
func (r *Runtime) Version(ctx context.Context, in *runtimeapi.VersionRequest, _ ...grpc.CallOption) (*runtimeapi.VersionResponse, error) {
	return do(ctx, r, "Version", in.GetVersion(), in, r.Hooks.Version, func(*runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
		return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "fake", RuntimeVersion: "1.0.0", RuntimeApiVersion: "v1"}, nil
	})
}

// Status reports the runtime and its network ready.
func (r *Runtime) Status(ctx context.Context, in *runtimeapi.StatusRequest, _ ...grpc.CallOption) (*runtimeapi.StatusResponse, error) {
	return do(ctx, r, "Status", "", in, r.Hooks.Status, func(*runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
		return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			{Type: runtimeapi.NetworkReady, Status: true},
		}}}, nil
	})
}

// RuntimeConfig answers an empty configuration (no cgroup driver said).
func (r *Runtime) RuntimeConfig(ctx context.Context, in *runtimeapi.RuntimeConfigRequest, _ ...grpc.CallOption) (*runtimeapi.RuntimeConfigResponse, error) {
	return do(ctx, r, "RuntimeConfig", "", in, r.Hooks.RuntimeConfig, func(*runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
		return &runtimeapi.RuntimeConfigResponse{}, nil
	})
}

// UpdateRuntimeConfig accepts any configuration.
func (r *Runtime) UpdateRuntimeConfig(ctx context.Context, in *runtimeapi.UpdateRuntimeConfigRequest, _ ...grpc.CallOption) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return do(ctx, r, "UpdateRuntimeConfig", "", in, r.Hooks.UpdateRuntimeConfig, func(*runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	})
}

var (
	_ runtimeapi.RuntimeServiceClient = (*Runtime)(nil)
	_ runtimeapi.ImageServiceClient   = (*Runtime)(nil)
)
