package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// socketProbe prints the socket's state for the login user: ok, missing, notsocket or denied,
// then the user, the socket's owner and its mode.
func socketProbe(socket string) string {
	return `s=` + remote.Quote(socket) + `
if [ ! -e "$s" ]; then st=missing; elif [ ! -S "$s" ]; then st=notsocket; elif [ -r "$s" ] && [ -w "$s" ]; then st=ok; else st=denied; fi
echo "$st $(id -un) $(stat -c '%U:%G %a' "$s" 2>/dev/null)"`
}

type socketState struct{ state, user, owner, mode string }

func parseSocketProbe(out string) socketState {
	f := strings.Fields(out)
	f = append(f, "", "", "", "")
	return socketState{state: f[0], user: f[1], owner: f[2], mode: f[3]}
}

// checkSocket is what Satellite's first CRI call needs: the socket exists, the SSH user may
// open it, and sshd forwards unix sockets (direct-streamlocal, OpenSSH's
// AllowStreamLocalForwarding).
func checkSocket(ctx context.Context, h Host, socket string) Result {
	r := Result{Name: nameSocket}
	out, err := h.Output(ctx, socketProbe(socket))
	if err != nil {
		return fail(r, fmt.Sprintf("cannot look at %s: %v", socket, err), "")
	}
	s := parseSocketProbe(string(out))
	switch s.state {
	case "missing":
		return fail(r, socket+" does not exist: containerd is not running, or listens elsewhere",
			"start containerd: sudo systemctl enable --now containerd\nor give Satellite the socket containerd listens on ([grpc] address in its config): --containerd-socket PATH")
	case "notsocket":
		return fail(r, socket+" is not a unix socket", "give Satellite the socket containerd listens on ([grpc] address in its config): --containerd-socket PATH")
	case "denied":
		return fail(r, fmt.Sprintf("%s may not open %s (%s, mode %s)", s.user, socket, s.owner, s.mode),
			fmt.Sprintf("log in as root (--ssh root@HOST), or let a group of %[1]s open the socket:\n"+
				"  sudo groupadd -f containerd && sudo usermod -aG containerd %[1]s\n"+
				"  and in containerd's config.toml: [grpc] gid = <the gid: getent group containerd>\n"+
				"  then: sudo systemctl restart containerd", s.user))
	case "ok":
	default:
		return fail(r, fmt.Sprintf("unexpected answer probing %s: %q", socket, strings.TrimSpace(string(out))), "")
	}
	conn, err := h.DialUnix(ctx, socket)
	if err != nil {
		var oce *ssh.OpenChannelError
		switch {
		case errors.As(err, &oce) && oce.Reason == ssh.Prohibited:
			return fail(r, "sshd refuses to forward unix sockets to "+socket,
				"in the host's /etc/ssh/sshd_config: AllowStreamLocalForwarding yes (and no DisableForwarding yes)\nthen: sudo systemctl reload ssh (or sshd)")
		case errors.As(err, &oce):
			return fail(r, fmt.Sprintf("nothing answers on %s (%s): containerd is not running", socket, oce.Message),
				"sudo systemctl restart containerd; sudo journalctl -u containerd -n 50 shows why it stopped")
		}
		return fail(r, fmt.Sprintf("cannot open %s over SSH: %v", socket, err), "")
	}
	_ = conn.Close()
	return pass(r, fmt.Sprintf("%s (%s %s), opened over SSH as %s", socket, s.owner, s.mode, s.user))
}

// criState is what the CRI said about itself.
type criState struct {
	version *runtimeapi.VersionResponse
	status  *runtimeapi.RuntimeStatus
	config  criConfig
	cni     cniInfo
}

// criConfig is the part of the "config" entry of a verbose CRI Status (containerd's CRI
// plugin configuration as JSON, what `crictl info` prints) the checks read.
type criConfig struct {
	SandboxImage        string   `json:"sandboxImage"` // containerd 1.x; 2.x pins it instead
	RestrictOOMScoreAdj bool     `json:"restrictOOMScoreAdj"`
	EnableCDI           *bool    `json:"enableCDI"` // absent before containerd 1.7
	CDISpecDirs         []string `json:"cdiSpecDirs"`
	ContainerdRootDir   string   `json:"containerdRootDir"`
	Containerd          struct {
		DefaultRuntimeName string `json:"defaultRuntimeName"`
		Runtimes           map[string]struct {
			Type    string         `json:"runtimeType"`
			Options map[string]any `json:"options"`
		} `json:"runtimes"`
	} `json:"containerd"`
}

// binary is the OCI runtime binary of containerd's runtime name: its BinaryName option, else
// runc (the runc shim's default).
func (c *criConfig) binary(name string) string {
	if b, _ := c.Containerd.Runtimes[name].Options["BinaryName"].(string); b != "" {
		return b
	}
	return "runc"
}

// nvidiaRuntime is the name of a runtime that runs containers with NVIDIA's runtime, or "".
func (c *criConfig) nvidiaRuntime() string {
	for name := range c.Containerd.Runtimes {
		if strings.Contains(name, "nvidia") || strings.Contains(c.binary(name), "nvidia") {
			return name
		}
	}
	return ""
}

// cniInfo is the "cniconfig" entry of a verbose CRI Status: what containerd's CNI library
// loaded.
type cniInfo struct {
	PluginDirs    []string `json:"PluginDirs"`
	PluginConfDir string   `json:"PluginConfDir"`
	Networks      []struct {
		Config struct {
			Name string `json:"Name"`
		} `json:"Config"`
	} `json:"Networks"`
}

func parseCRIInfo(info map[string]string) (criConfig, cniInfo, error) {
	var cfg criConfig
	var cni cniInfo
	var errs []error
	if s, ok := info["config"]; ok {
		errs = append(errs, json.Unmarshal([]byte(s), &cfg))
	}
	if s, ok := info["cniconfig"]; ok {
		errs = append(errs, json.Unmarshal([]byte(s), &cni))
	}
	return cfg, cni, errors.Join(errs...)
}

func checkCRI(ctx context.Context, rt Runtime, h Commander, o Options) (*criState, Result) {
	r := Result{Name: nameCRI}
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if errors.Is(err, remote.ErrUnimplemented) {
		return nil, criDisabled(ctx, h, o)
	}
	if err != nil {
		return nil, fail(r, fmt.Sprintf("containerd does not answer CRI calls on %s: %v", o.Socket, err),
			"sudo systemctl status containerd; sudo journalctl -u containerd -n 50")
	}
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return nil, fail(r, fmt.Sprintf("CRI Status: %v", err), "sudo journalctl -u containerd -n 50")
	}
	cfg, cni, err := parseCRIInfo(st.GetInfo())
	if err != nil {
		return nil, fail(r, fmt.Sprintf("CRI Status: unreadable verbose info: %v", err), "")
	}
	state := &criState{version: v, status: st.GetStatus(), config: cfg, cni: cni}
	detail := fmt.Sprintf("%s %s, CRI %s", v.GetRuntimeName(), v.GetRuntimeVersion(), v.GetRuntimeApiVersion())
	if v.GetRuntimeName() != "containerd" {
		return state, warn(r, detail+": Satellite is built and tested for containerd", "run containerd 1.6 or later (2.x preferred)")
	}
	if major, minor, ok := parseVersion(v.GetRuntimeVersion()); ok && (major < 1 || (major == 1 && minor < 6)) {
		return state, warn(r, detail+": older than 1.6, which Satellite is tested with", "upgrade containerd to 1.6 or later (2.x preferred)")
	}
	return state, pass(r, detail)
}

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)`)

// parseVersion reads a runtime version's major and minor numbers; not ok when there are none
// or they overflow an int.
func parseVersion(s string) (major, minor int, ok bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	return major, minor, err1 == nil && err2 == nil
}

// criDisabled explains a containerd that answers but serves no runtime.v1.RuntimeService: most
// often disabled_plugins = ["cri"] as some packages (Docker's containerd.io) ship it.
func criDisabled(ctx context.Context, h Commander, o Options) Result {
	r := Result{Name: nameCRI}
	detail := fmt.Sprintf("CRI plugin disabled: containerd answers on %s, but runtime.v1.RuntimeService is unimplemented", o.Socket)
	prepare := o.PrepareCommand + " --restart-containerd"
	text, err := h.Output(ctx, "cat -- "+remote.Quote(o.ContainerdConfig))
	if err == nil {
		if c, perr := parseContainerdConfig(string(text)); perr == nil {
			if found, line := c.disabledCRI(); len(found) > 0 {
				k, _ := c.doc.get("disabled_plugins")
				return fail(r, detail, fmt.Sprintf("%s line %d: %s\n"+
					"remove %s from disabled_plugins, then restart containerd (sudo systemctl restart containerd);\n"+
					"%s does both (add --dry-run to see the diff first)",
					o.ContainerdConfig, line, strings.TrimSpace(c.doc.text[k.lineStart:k.valEnd]), quoteAll(found), prepare))
			}
		}
	}
	return fail(r, detail, fmt.Sprintf("if containerd's config lists \"cri\" or \"io.containerd.grpc.v1.cri\" in disabled_plugins\n"+
		"(sudo containerd config dump | grep disabled_plugins), remove it and restart containerd;\n"+
		"%s does both for %s. containerd older than 1.5 serves no CRI v1 at all: upgrade it.", prepare, o.ContainerdConfig))
}

func condition(st *runtimeapi.RuntimeStatus, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range st.GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

func conditionText(c *runtimeapi.RuntimeCondition) string {
	if c == nil {
		return "not reported"
	}
	s := fmt.Sprintf("%s=%t", c.GetType(), c.GetStatus())
	if c.GetReason() != "" || c.GetMessage() != "" {
		s += fmt.Sprintf(" (%s: %s)", c.GetReason(), c.GetMessage())
	}
	return s
}

func runtimeReady(st *runtimeapi.RuntimeStatus) Result {
	r := Result{Name: nameRuntimeReady}
	c := condition(st, runtimeapi.RuntimeReady)
	if c.GetStatus() {
		return pass(r, "RuntimeReady")
	}
	return fail(r, "containerd's runtime is not ready: "+conditionText(c), "sudo journalctl -u containerd -n 100 says why")
}

func networkReady(st *runtimeapi.RuntimeStatus, cni cniInfo, prepare string) Result {
	r := Result{Name: nameCNI}
	dir := cni.PluginConfDir
	if dir == "" {
		dir = defaultCNIConfDir
	}
	c := condition(st, runtimeapi.NetworkReady)
	if c.GetStatus() {
		var names []string
		for _, n := range cni.Networks {
			if n.Config.Name != "cni-loopback" { // containerd's own, always loaded
				names = append(names, n.Config.Name)
			}
		}
		return pass(r, fmt.Sprintf("NetworkReady; %s: %s", dir, strings.Join(names, ", ")))
	}
	return fail(r, "containerd's network is not ready: "+conditionText(c), fmt.Sprintf(
		"pods use the host's network, so a loopback-only CNI config is enough: %s writes it, or by hand:\n"+
			"  echo '%s' | sudo tee %s/%s", prepare, strings.TrimSpace(loopbackConflist), dir, loopbackConflistName))
}

// capSysResource is CAP_SYS_RESOURCE's bit (linux/capability.h): what lowering a process's
// oom_score_adj takes.
const capSysResource = 24

// parseCapBnd reads the bounding capability set from /proc/self/status lines.
func parseCapBnd(out string) (uint64, error) {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapBnd line")
}

// checkOOMScoreAdj catches hosts (containers, some VMs) where no process may lower
// oom_score_adj: runc then fails every sandbox ("can't get final child's PID from pipe") unless
// containerd's restrict_oom_score_adj keeps containers at or above containerd's own score.
func checkOOMScoreAdj(ctx context.Context, h Commander, cfg criConfig, prepare string) Result {
	r := Result{Name: nameOOM}
	out, err := h.Output(ctx, "grep CapBnd /proc/self/status")
	if err != nil {
		return warn(r, "cannot read the capability bounding set: "+err.Error(), "")
	}
	bnd, err := parseCapBnd(string(out))
	if err != nil {
		return warn(r, "cannot read the capability bounding set: "+err.Error(), "")
	}
	switch {
	case bnd&(1<<capSysResource) != 0:
		return pass(r, "the host may lower oom_score_adj")
	case cfg.RestrictOOMScoreAdj:
		return pass(r, "the host may not lower oom_score_adj; containerd's restrict_oom_score_adj is on, as it needs")
	}
	return fail(r, "the host may not lower oom_score_adj (no CAP_SYS_RESOURCE) and containerd's restrict_oom_score_adj is off: every pod would fail to start",
		"set restrict_oom_score_adj = true in containerd's CRI runtime section and restart containerd;\n"+prepare+" --restart-containerd does both")
}
