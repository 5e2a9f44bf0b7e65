package remote

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime is the CRI v1 API of the host's containerd, reached through the host's SSH
// connection. Its RuntimeService and ImageService clients return native errors (see
// errors.go), and unary calls without a deadline get CallTimeout.
type Runtime struct {
	runtimeapi.RuntimeServiceClient
	runtimeapi.ImageServiceClient
	conn  *grpc.ClientConn
	calls *atomic.Int64
}

// Calls is how many CRI calls have been made, for metrics and benchmarks.
func (r *Runtime) Calls() int64 { return r.calls.Load() }

// RuntimeConfig configures Runtime.
type RuntimeConfig struct {
	// Socket is the containerd socket path on the host.
	Socket string
	// CallTimeout bounds unary calls that carry no deadline of their own. Default 30 s.
	CallTimeout time.Duration
	// PullTimeout bounds image pulls. Default 30 min.
	PullTimeout time.Duration
	// ObserveCall, when set, is called after every unary call with the method's short name
	// ("ListContainers"), how long it took and its error, for metrics. It must not block.
	ObserveCall func(method string, took time.Duration, err error)
}

// NewRuntime prepares the CRI client. It connects lazily; a dropped SSH connection is dialed
// again by gRPC's own reconnection through h.
func NewRuntime(h *Host, cfg RuntimeConfig) (*Runtime, error) {
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.PullTimeout == 0 {
		cfg.PullTimeout = 30 * time.Minute
	}
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return h.DialUnix(ctx, cfg.Socket) }
	calls := new(atomic.Int64)
	conn, err := grpc.NewClient("passthrough:///cri",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dial),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 10 * time.Second},
			MinConnectTimeout: 10 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
		grpc.WithChainUnaryInterceptor(unaryInterceptor(cfg, calls)),
		grpc.WithChainStreamInterceptor(streamInterceptor),
	)
	if err != nil {
		return nil, fmt.Errorf("cri client: %w", err)
	}
	return &Runtime{
		RuntimeServiceClient: runtimeapi.NewRuntimeServiceClient(conn),
		ImageServiceClient:   runtimeapi.NewImageServiceClient(conn),
		conn:                 conn,
		calls:                calls,
	}, nil
}

// Close ends the gRPC client. The SSH connection belongs to the Host.
func (r *Runtime) Close() error { return r.conn.Close() }

func unaryInterceptor(cfg RuntimeConfig, calls *atomic.Int64) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			timeout := cfg.CallTimeout
			if strings.HasSuffix(method, "/PullImage") {
				timeout = cfg.PullTimeout
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		start := time.Now()
		err := translateStatus(shortMethod(method), invoker(ctx, method, req, reply, cc, opts...))
		if cfg.ObserveCall != nil {
			cfg.ObserveCall(shortMethod(method), time.Since(start), err)
		}
		return err
	}
}

func streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, translateStatus(shortMethod(method), err)
	}
	return &translatingStream{ClientStream: s, method: shortMethod(method)}, nil
}

type translatingStream struct {
	grpc.ClientStream
	method string
}

func (s *translatingStream) RecvMsg(m any) error {
	return translateStatus(s.method, s.ClientStream.RecvMsg(m))
}

func shortMethod(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[i+1:]
	}
	return m
}
