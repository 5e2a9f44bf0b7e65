package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// host is the provider's Host (provider.Host, which this package cannot import).
type host interface {
	Output(ctx context.Context, cmd string) ([]byte, error)
	Input(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error)
	Open(ctx context.Context, path string) (remote.File, error)
	Stat(ctx context.Context, path string) (os.FileInfo, error)
	Rename(ctx context.Context, from, to string) error
	Remove(ctx context.Context, path string) error
	WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error
	MkdirAll(ctx context.Context, path string, mode os.FileMode) error
	RemoveAll(ctx context.Context, path string) error
	Glob(ctx context.Context, pattern string) ([]string, error)
	Stream(ctx context.Context, url string, opts remote.StreamOptions) error
	PredialStream(ctx context.Context) *remote.Predialed
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
	Ping(ctx context.Context) error
}

var (
	_ host = (*Host)(nil)
	_ host = (*remote.Host)(nil)
)

// Every method of both fakes answers a call with zero arguments (nil requests) without
// panicking: with an answer or an error.
func TestNoMethodPanics(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // event streams end at once
	for _, v := range []any{NewHost(), NewRuntime()} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumMethod() {
			m := rv.Type().Method(i)
			in := []reflect.Value{}
			for j := range m.Type.NumIn() - 1 {
				arg := m.Type.In(j + 1)
				switch {
				case arg == reflect.TypeFor[context.Context]():
					in = append(in, reflect.ValueOf(ctx))
				case m.Type.IsVariadic() && j == m.Type.NumIn()-2:
				default:
					in = append(in, reflect.Zero(arg))
				}
			}
			t.Run(fmt.Sprintf("%T.%s", v, m.Name), func(t *testing.T) {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("panicked: %v", r)
					}
				}()
				rv.Method(i).Call(in)
			})
		}
	}
}

// A container's life as the CRI has it: created from a pulled image in a ready sandbox,
// started, stopped, removed; each step seen by an event stream and by the lists.
func TestRuntimeLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := NewRuntime()
	events, err := r.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := r.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Uid: "u1"}, Labels: map[string]string{"pod": "web"}, LogDirectory: "/var/log/pods/u1"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "nginx:1"}, LogPath: "app/0.log"}
	create := &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, Config: cfg}
	if _, err := r.CreateContainer(ctx, create); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("create without the image: %v, want not found", err)
	}
	if _, err := r.PullImage(ctx, &runtimeapi.PullImageRequest{Image: cfg.Image}); err != nil {
		t.Fatal(err)
	}
	c, err := r.CreateContainer(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ContainerId
	if _, err := r.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id}); err == nil {
		t.Error("exec in a created container succeeded")
	}
	for _, step := range []func() error{
		func() error {
			_, err := r.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
			return err
		},
		func() error {
			_, err := r.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id})
			return err
		},
		func() error {
			_, err := r.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
			return err
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 5 {
		ev, err := events.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.ContainerEventType.String()+" "+ev.PodSandboxStatus.GetMetadata().GetUid())
	}
	want := "[CONTAINER_CREATED_EVENT u1 CONTAINER_CREATED_EVENT u1 CONTAINER_STARTED_EVENT u1 CONTAINER_STOPPED_EVENT u1 CONTAINER_DELETED_EVENT u1]"
	if fmt.Sprint(got) != want {
		t.Errorf("events %v,\nwant   %s", got, want)
	}
	if _, err := r.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id}); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("status of a removed container: %v, want not found", err)
	}
}

// Stopping a sandbox kills its running containers; listing filters by state and labels; a
// hook answers in place of the state, and every call is recorded.
func TestRuntimeSandboxAndHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := NewRuntime()
	r.AddImage("busybox")
	sb := r.AddSandbox(&runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Uid: "u1"}, Labels: map[string]string{"pod": "a"}})
	r.AddSandbox(&runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Uid: "u2"}, Labels: map[string]string{"pod": "b"}})
	c, _ := r.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: &runtimeapi.ContainerConfig{Image: &runtimeapi.ImageSpec{Image: "busybox"}}})
	r.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId})
	r.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb})
	st, _ := r.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.ContainerId})
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Status.ExitCode != 137 {
		t.Errorf("container of a stopped sandbox: %v %d, want exited 137", st.Status.State, st.Status.ExitCode)
	}
	ready, _ := r.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}})
	byLabel, _ := r.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"pod": "a"}}})
	if len(ready.Items) != 1 || ready.Items[0].Metadata.Uid != "u2" || len(byLabel.Items) != 1 || byLabel.Items[0].Id != sb {
		t.Errorf("ready %v, labelled a %v", ready.Items, byLabel.Items)
	}
	r.Hooks.ExecSync = func(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
		return &runtimeapi.ExecSyncResponse{ExitCode: 3, Stderr: []byte("no")}, nil
	}
	if resp, err := r.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: "any", Cmd: []string{"cat", "/x"}}); err != nil || resp.ExitCode != 3 {
		t.Errorf("hooked exec: %v %v", resp, err)
	}
	if got := r.CallsOf("ExecSync"); fmt.Sprint(got) != "[any cat /x]" {
		t.Errorf("ExecSync calls %q", got)
	}
}

// Files live in memory with remote.Host's semantics: a missing file is remote.ErrNotFound,
// a file needs its directory, rename replaces, RemoveAll of nothing is fine, Glob matches.
func TestHostFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHost()
	if err := h.WriteFile(ctx, "/a/b/f", []byte("x"), 0o600); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("write without the directory: %v", err)
	}
	if err := h.MkdirAll(ctx, "/a/b", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		h.WriteFile(ctx, "/a/b/f.tmp", []byte("new"), 0o600),
		h.WriteFile(ctx, "/a/b/f", []byte("old"), 0o600),
		h.Rename(ctx, "/a/b/f.tmp", "/a/b/f"),
		h.RemoveAll(ctx, "/nothing"),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	f, err := h.Open(ctx, "/a/b/f")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "new" {
		t.Errorf("read %q %v, want new", buf, err)
	}
	if m, _ := h.Glob(ctx, "/a/*/f*"); fmt.Sprint(m) != "[/a/b/f]" {
		t.Errorf("glob %v", m)
	}
	if err := h.Remove(ctx, "/a/b"); err == nil {
		t.Error("removed a directory that is not empty")
	}
	if _, err := h.Stat(ctx, "/a/b/f.tmp"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("stat of the renamed file: %v", err)
	}
	if err := h.RemoveAll(ctx, "/a"); err != nil || len(h.Paths("/a")) != 0 {
		t.Errorf("remove all: %v, left %v", err, h.Paths("/a"))
	}
}

// Commands are answered by the first script entry whose prefix matches; others exit 127.
func TestHostCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHost()
	h.Script(Command{Prefix: "nproc", Stdout: "4\n"}, Command{Prefix: "cat >", Run: func(_ context.Context, cmd string, stdin []byte) ([]byte, error) {
		return []byte(strings.ToUpper(string(stdin))), nil
	}})
	if out, err := h.Output(ctx, "nproc --all"); err != nil || string(out) != "4\n" {
		t.Errorf("nproc: %q %v", out, err)
	}
	if out, err := h.Input(ctx, "cat > /x", strings.NewReader("secret")); err != nil || string(out) != "SECRET" {
		t.Errorf("input: %q %v", out, err)
	}
	var exit *remote.ExitError
	if _, err := h.Output(ctx, "uname"); !errors.As(err, &exit) || exit.Code != 127 {
		t.Errorf("unscripted: %v, want exit 127", err)
	}
	if got := h.Commands(); fmt.Sprint(got) != "[nproc --all cat > /x uname]" {
		t.Errorf("commands %q", got)
	}
	if _, err := h.DialTCP(ctx, "10.0.0.1:80"); err == nil {
		t.Error("dial without Dial succeeded")
	}
}

// A file made unreadable fails Open and Stat with the error as given; the reads of an opened
// file are counted by its path.
func TestFailAndReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHost()
	h.SetFile("/a/log", []byte("0123456789"), 0o644)
	f, err := h.Open(ctx, "/a/log")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	for _, off := range []int64{0, 4, 8} {
		_, _ = f.ReadAt(b, off)
	}
	if n := h.Reads("/a/log"); n != 3 {
		t.Errorf("%d reads counted, want 3", n)
	}
	denied := errors.New("permission denied")
	h.Fail("/a/log", denied)
	if _, err := h.Open(ctx, "/a/log"); err != denied {
		t.Errorf("open of a failed file: %v, want %v", err, denied)
	}
	if _, err := h.Stat(ctx, "/a/log"); err != denied {
		t.Errorf("stat of a failed file: %v, want %v", err, denied)
	}
	h.Fail("/a/log", nil)
	if _, err := h.Open(ctx, "/a/log"); err != nil {
		t.Errorf("open once no longer failed: %v", err)
	}
}
