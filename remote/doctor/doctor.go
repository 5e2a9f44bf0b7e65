package doctor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote/tunnel"
)

// Status is a check's verdict.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	// Skip is a check that could not run because one it depends on failed.
	Skip Status = "skip"
)

func (s Status) label() string {
	switch s {
	case OK:
		return "[ ok ]"
	case Warn:
		return "[warn]"
	case Fail:
		return "[FAIL]"
	}
	return "[skip]"
}

// Result is one line of the checklist. Fix, for warnings and failures, is a command or config
// snippet that resolves it, possibly several lines.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Commander runs a shell command on the host and returns its standard output; a non-zero exit
// is a *remote.ExitError. *remote.Host is one.
type Commander interface {
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// Host is a Commander that also opens unix sockets on the host, as Satellite's CRI client does,
// and SSH channels, as its cluster network's tunnel does.
type Host interface {
	Commander
	DialUnix(ctx context.Context, path string) (net.Conn, error)
	tunnel.Opener
}

// Runtime is the part of the host's CRI API the checks call. *remote.Runtime is one.
type Runtime interface {
	Version(ctx context.Context, in *runtimeapi.VersionRequest, opts ...grpc.CallOption) (*runtimeapi.VersionResponse, error)
	Status(ctx context.Context, in *runtimeapi.StatusRequest, opts ...grpc.CallOption) (*runtimeapi.StatusResponse, error)
	ImageStatus(ctx context.Context, in *runtimeapi.ImageStatusRequest, opts ...grpc.CallOption) (*runtimeapi.ImageStatusResponse, error)
	ListImages(ctx context.Context, in *runtimeapi.ListImagesRequest, opts ...grpc.CallOption) (*runtimeapi.ListImagesResponse, error)
}

// Options are what Satellite is (or will be) told about the host, and how to name the fixes.
type Options struct {
	SSHTarget        string // user@host:port, for messages
	KnownHosts       string // known_hosts path, for the host key fix
	Socket           string // containerd's socket (--containerd-socket)
	ContainerdRoot   string // --containerd-root
	PodLogDir        string // --pod-log-dir
	ContainerdConfig string // containerd's config.toml on the host, read to explain a disabled CRI
	// ClusterRanges are the ranges Satellite routes into the tunnel (the cluster's Service
	// ranges and --cluster-cidrs), checked against the host's networks; none: not checked.
	ClusterRanges []netip.Prefix
	// PrepareCommand is the `satellite host prepare ...` invocation fixes point to.
	PrepareCommand string
	// CheckTimeout bounds each check. Default 20 s.
	CheckTimeout time.Duration
	// Now is the local clock, for the clock skew check. Default time.Now.
	Now func() time.Time
}

// Run checks the host and returns one result per check, in a fixed order. It never stops at
// a failure: checks that depend on a failed one are reported as skipped.
func Run(ctx context.Context, h Host, rt Runtime, o Options) []Result {
	if o.CheckTimeout == 0 {
		o.CheckTimeout = 20 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	check := func(f func(ctx context.Context) Result) Result {
		ctx, cancel := context.WithTimeout(ctx, o.CheckTimeout)
		defer cancel()
		return f(ctx)
	}
	ssh := check(func(ctx context.Context) Result { return checkSSH(ctx, h, o) })
	if ssh.Status == Fail {
		return append([]Result{ssh}, skipAll("needs SSH", nameSocket, nameCRI, nameRuntimeReady, nameCNI, nameOOM, nameSandbox,
			nameRunc, nameCgroup, nameDiskRoot, nameDiskLogs, nameNvidiaSMI, nameGPURuntime, nameTunnel, nameRanges, nameClock)...)
	}
	cri, rs := runtimeChecks(ctx, h, rt, o, check)
	rs = append([]Result{ssh}, rs...)
	var cfg *criConfig
	if cri != nil {
		cfg = &cri.config
	}
	rs = append(rs,
		check(func(ctx context.Context) Result { return checkRunc(ctx, h, cfg) }),
		check(func(ctx context.Context) Result { return checkCgroup(ctx, h) }),
		check(func(ctx context.Context) Result { return checkContainerdRootDisk(ctx, h, o.ContainerdRoot, cfg) }),
		check(func(ctx context.Context) Result { return checkDisk(ctx, h, nameDiskLogs, o.PodLogDir, "--pod-log-dir") }),
	)
	var gpus []gpu
	rs = append(rs, check(func(ctx context.Context) Result {
		var r Result
		gpus, r = checkNvidiaSMI(ctx, h)
		return r
	}))
	rs = append(rs, check(func(ctx context.Context) Result { return checkGPURuntime(ctx, h, gpus, cfg) }))
	rs = append(rs, check(func(ctx context.Context) Result { return checkTunnel(ctx, h, o) }))
	rs = append(rs, check(func(ctx context.Context) Result { return checkRanges(ctx, h, o) }))
	return append(rs, check(func(ctx context.Context) Result { return checkClock(ctx, h, o.Now) }))
}

// runtimeChecks are the checks of containerd through its socket; cri is nil when it could not
// be reached.
func runtimeChecks(ctx context.Context, h Host, rt Runtime, o Options, check func(func(context.Context) Result) Result) (*criState, []Result) {
	socket := check(func(ctx context.Context) Result { return checkSocket(ctx, h, o.Socket) })
	if socket.Status == Fail {
		return nil, append([]Result{socket}, skipAll("needs the containerd socket", nameCRI, nameRuntimeReady, nameCNI, nameOOM, nameSandbox)...)
	}
	var cri *criState
	r := check(func(ctx context.Context) Result {
		var r Result
		cri, r = checkCRI(ctx, rt, h, o)
		return r
	})
	if cri == nil {
		return nil, append([]Result{socket, r}, skipAll("needs the containerd CRI", nameRuntimeReady, nameCNI, nameOOM, nameSandbox)...)
	}
	return cri, []Result{socket, r,
		runtimeReady(cri.status),
		networkReady(cri.status, cri.cni, o.PrepareCommand),
		check(func(ctx context.Context) Result { return checkOOMScoreAdj(ctx, h, cri.config, o.PrepareCommand) }),
		check(func(ctx context.Context) Result { return checkSandboxImage(ctx, rt, h, cri.config) }),
	}
}

// Names of the checks, as printed.
const (
	nameSSH          = "ssh"
	nameSocket       = "containerd socket"
	nameCRI          = "containerd CRI"
	nameRuntimeReady = "runtime ready"
	nameCNI          = "CNI network"
	nameOOM          = "oom_score_adj"
	nameSandbox      = "sandbox image"
	nameRunc         = "runc"
	nameCgroup       = "cgroup"
	nameDiskRoot     = "disk: containerd"
	nameDiskLogs     = "disk: pod logs"
	nameNvidiaSMI    = "nvidia-smi"
	nameGPURuntime   = "GPU runtime/CDI"
	nameClock        = "clock skew"
)

func skipAll(why string, names ...string) []Result {
	rs := make([]Result, len(names))
	for i, name := range names {
		rs[i] = Result{Name: name, Status: Skip, Detail: "not checked: " + why}
	}
	return rs
}

// Failed counts the failed checks.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

// WriteText prints the checklist: one line per check, and an indented fix under each warning
// and failure, then a summary.
func WriteText(w io.Writer, rs []Result) error {
	width := 0
	count := map[Status]int{}
	for _, r := range rs {
		width = max(width, len(r.Name))
		count[r.Status]++
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %-*s  %s\n", r.Status.label(), width, r.Name, r.Detail)
		if r.Fix == "" || (r.Status != Warn && r.Status != Fail) {
			continue
		}
		for i, line := range strings.Split(strings.TrimRight(r.Fix, "\n"), "\n") {
			prefix := "       fix: "
			if i > 0 {
				prefix = "            "
			}
			b.WriteString(strings.TrimRight(prefix+line, " ") + "\n")
		}
	}
	fmt.Fprintf(&b, "%d ok, %d warnings, %d failed", count[OK], count[Warn], count[Fail])
	if count[Skip] > 0 {
		fmt.Fprintf(&b, ", %d not checked", count[Skip])
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
