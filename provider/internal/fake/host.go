package fake

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/satellite-vk/satellite/remote"
)

// Call is one recorded call of a fake: the method, its main argument (a path, a command, a
// container id...) and, for the runtime, the request itself.
type Call struct {
	Method string
	Arg    string
	Req    any
}

func (c Call) String() string { return c.Method + " " + c.Arg }

// Command is one scripted answer of Host's Output and Input: the first entry whose Prefix
// begins the command line answers it, with Run when set and with Stdout and Err otherwise.
type Command struct {
	Prefix string
	Stdout string
	Err    error
	Run    func(ctx context.Context, cmd string, stdin []byte) ([]byte, error)
}

// Host is an in-memory remote host. Its zero value is not ready: use NewHost.
type Host struct {
	mu       sync.Mutex
	files    map[string]*file
	commands []Command
	calls    []Call
	// fail holds the errors Open and Stat answer for some paths (Fail).
	fail map[string]error
	// reads counts the ReadAt calls of the files opened at each path.
	reads map[string]int

	// Dial, when set, answers DialTCP; without it every dial is refused.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Streamer, when set, serves Stream; without it Stream fails.
	Streamer func(ctx context.Context, url string, opts remote.StreamOptions) error
	// PingErr is what Ping returns.
	PingErr error
}

// NewHost returns a host with an empty root directory and no scripted commands.
func NewHost() *Host {
	return &Host{files: map[string]*file{"/": {dir: true, mode: 0o755}}}
}

// Script adds answers for commands, tried in order after those added before.
func (h *Host) Script(cmds ...Command) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands = append(h.commands, cmds...)
}

// Calls returns the calls made so far, in order.
func (h *Host) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Call(nil), h.calls...)
}

// Commands returns the command lines run so far, in order.
func (h *Host) Commands() []string {
	var out []string
	for _, c := range h.Calls() {
		if c.Method == "Output" || c.Method == "Input" {
			out = append(out, c.Arg)
		}
	}
	return out
}

func (h *Host) record(method, arg string) {
	h.calls = append(h.calls, Call{Method: method, Arg: arg})
}

// Output runs a scripted command.
func (h *Host) Output(ctx context.Context, cmd string) ([]byte, error) {
	return h.run(ctx, "Output", cmd, nil)
}

// Input runs a scripted command with stdin, which is read in full first.
func (h *Host) Input(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	var in []byte
	if stdin != nil {
		var err error
		if in, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("fake host: read stdin of %q: %w", cmd, err)
		}
	}
	return h.run(ctx, "Input", cmd, in)
}

// run answers with the first scripted command that matches; an unscripted command exits 127
// as a shell does for a command it cannot find, saying so on stderr.
func (h *Host) run(ctx context.Context, method, cmd string, stdin []byte) ([]byte, error) {
	h.mu.Lock()
	h.record(method, cmd)
	var match *Command
	for i := range h.commands {
		if strings.HasPrefix(cmd, h.commands[i].Prefix) {
			match = &h.commands[i]
			break
		}
	}
	h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case match == nil:
		return nil, &remote.ExitError{Code: 127, Stderr: "fake host: no command scripted for: " + cmd}
	case match.Run != nil:
		return match.Run(ctx, cmd, stdin)
	default:
		return []byte(match.Stdout), match.Err
	}
}

// Stream serves an exec or attach session through Streamer.
func (h *Host) Stream(ctx context.Context, url string, opts remote.StreamOptions) error {
	defer opts.Predialed.Close()
	h.mu.Lock()
	h.record("Stream", url)
	f := h.Streamer
	h.mu.Unlock()
	if f == nil {
		return fmt.Errorf("fake host: stream %s: no Streamer set", url)
	}
	return f(ctx, url, opts)
}

// PredialStream returns nil: the fake host has no streaming server to connect to early.
func (h *Host) PredialStream(context.Context) *remote.Predialed {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("PredialStream", "")
	return nil
}

// DialTCP connects through Dial; without it the connection is refused.
func (h *Host) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	h.mu.Lock()
	h.record("DialTCP", addr)
	f := h.Dial
	h.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("fake host: dial tcp %s: connection refused", addr)
	}
	return f(ctx, addr)
}

// Ping returns PingErr.
func (h *Host) Ping(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("Ping", "")
	if err := ctx.Err(); err != nil {
		return err
	}
	return h.PingErr
}

// OpenChannel refuses every channel, as an sshd that permits none.
func (h *Host) OpenChannel(_ context.Context, name string, _ []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	h.mu.Lock()
	h.record("OpenChannel", name)
	h.mu.Unlock()
	return nil, nil, &ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "fake host: no " + name}
}
