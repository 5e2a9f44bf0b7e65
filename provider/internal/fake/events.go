package fake

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventHub hands every container and sandbox change to the open event streams. A stream that
// falls eventsBuffered events behind loses the newer ones, as a slow reader of containerd's
// does; relist is what catches up.
type eventHub struct {
	mu   sync.Mutex
	subs map[chan *runtimeapi.ContainerEventResponse]struct{}
}

const eventsBuffered = 128

func newEventHub() *eventHub {
	return &eventHub{subs: map[chan *runtimeapi.ContainerEventResponse]struct{}{}}
}

func (h *eventHub) send(t runtimeapi.ContainerEventType, id string, sb *runtimeapi.PodSandboxStatus, cs []*runtimeapi.ContainerStatus) {
	ev := &runtimeapi.ContainerEventResponse{ContainerId: id, ContainerEventType: t, PodSandboxStatus: clone(sb)}
	for _, c := range cs {
		ev.ContainersStatuses = append(ev.ContainersStatuses, clone(c))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (h *eventHub) subscribe(ctx context.Context) *eventStream {
	ch := make(chan *runtimeapi.ContainerEventResponse, eventsBuffered)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	s := &eventStream{ctx: ctx, ch: ch}
	s.stop = func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, ch)
	}
	return s
}

// eventStream is one GetContainerEvents stream; it ends with ctx.
type eventStream struct {
	ctx  context.Context
	ch   chan *runtimeapi.ContainerEventResponse
	stop func()
}

func (s *eventStream) Recv() (*runtimeapi.ContainerEventResponse, error) {
	select {
	case ev := <-s.ch:
		return ev, nil
	case <-s.ctx.Done():
		s.stop()
		return nil, fmt.Errorf("cri GetContainerEvents: %w", s.ctx.Err())
	}
}

func (s *eventStream) Header() (metadata.MD, error) { return metadata.MD{}, nil }
func (s *eventStream) Trailer() metadata.MD         { return metadata.MD{} }
func (s *eventStream) CloseSend() error             { return nil }
func (s *eventStream) Context() context.Context     { return s.ctx }
func (s *eventStream) SendMsg(any) error {
	return fmt.Errorf("cri GetContainerEvents: a server stream takes no messages")
}
func (s *eventStream) RecvMsg(m any) error {
	ev, err := s.Recv()
	if err != nil {
		return err
	}
	out, ok := m.(*runtimeapi.ContainerEventResponse)
	if !ok {
		return fmt.Errorf("cri GetContainerEvents: cannot receive into %T", m)
	}
	proto.Reset(out)
	proto.Merge(out, ev)
	return nil
}

// GetContainerEvents streams every container and sandbox change from now until ctx ends.
func (r *Runtime) GetContainerEvents(ctx context.Context, in *runtimeapi.GetEventsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[runtimeapi.ContainerEventResponse], error) {
	r.mu.Lock()
	r.calls = append(r.calls, Call{Method: "GetContainerEvents"})
	hook := r.Hooks.GetContainerEvents
	r.mu.Unlock()
	if hook != nil {
		if stream, err := hook(ctx, in); !errors.Is(err, Pass) {
			return stream, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cri GetContainerEvents: %w", err)
	}
	return r.events.subscribe(ctx), nil
}
