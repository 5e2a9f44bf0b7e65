package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every unary CRI call reaches ObserveCall with its short method name, how long it took and
// the native error callers see.
func TestObserveCall(t *testing.T) {
	t.Parallel()
	type call struct {
		method string
		took   time.Duration
		err    error
	}
	var got []call
	cfg := RuntimeConfig{CallTimeout: time.Second, ObserveCall: func(m string, d time.Duration, err error) { got = append(got, call{m, d, err}) }}
	intercept := unaryInterceptor(cfg, new(atomic.Int64))
	slowNotFound := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		time.Sleep(5 * time.Millisecond)
		return status.Error(codes.NotFound, "no such container")
	}
	ok := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	err := intercept(context.Background(), "/runtime.v1.RuntimeService/ContainerStatus", nil, nil, nil, slowNotFound)
	_ = intercept(context.Background(), "/runtime.v1.RuntimeService/Version", nil, nil, nil, ok)
	if len(got) != 2 || got[0].method != "ContainerStatus" || got[0].took < 5*time.Millisecond || !errors.Is(got[0].err, ErrNotFound) || got[0].err != err ||
		got[1].method != "Version" || got[1].err != nil {
		t.Errorf("observed %+v", got)
	}
}

// The keepalive's and Ping's round trips reach the RoundTrip hook and Stats.
func TestKeepaliveRoundTrip(t *testing.T) {
	t.Parallel()
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := mustSigner(t)
	srv := startSSHServer(t, hostKey, clientKey)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	addr := srv.ln.Addr().String()
	line := "[127.0.0.1]:" + addr[strings.LastIndexByte(addr, ':')+1:] + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))) + "\n"
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	rtts := make(chan time.Duration, 100)
	// A keepalive unanswered within the interval closes the connection: the interval leaves
	// room for a loaded machine.
	h, err := NewHost(Config{Addr: addr, User: "root", Signer: clientKey, KnownHosts: kh, KeepaliveInterval: 300 * time.Millisecond,
		RoundTrip: func(d time.Duration) {
			select {
			case rtts <- d:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if st := h.Stats(); st.RoundTrip != 0 {
		t.Errorf("round trip %v before any keepalive", st.RoundTrip)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Ping's round trip, then at least two of the keepalive loop's (a connection closed by a
	// late reply is opened again by the next Ping).
	pings, observed := 0, 0
	for observed < pings+2 {
		if !h.Connected() {
			if err := h.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			pings++
		}
		select {
		case d := <-rtts:
			observed++
			if d <= 0 || d > 10*time.Second {
				t.Errorf("round trip %v", d)
			}
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("%d round trips observed after %d pings, want 2 more from the keepalive loop", observed, pings)
		}
	}
	if st := h.Stats(); st.RoundTrip <= 0 {
		t.Errorf("Stats().RoundTrip = %v, want the last one", st.RoundTrip)
	}
}
