package doctor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/satellite-vk/satellite/remote"
)

// PrepareOptions say where the host's configuration is and what Prepare may do.
type PrepareOptions struct {
	ContainerdConfig string // containerd's config.toml
	// CNIConfDir is where the loopback CNI config goes when there is none; "": the conf_dir of
	// containerd's config, else containerd's default /etc/cni/net.d.
	CNIConfDir string
	// DryRun prints what would change, as a diff, and changes nothing.
	DryRun bool
	// RestartContainerd restarts containerd (systemctl) after its config changed.
	RestartContainerd bool
	// SSHDConfig is sshd's main config file; "": DefaultSSHDConfig.
	SSHDConfig string
	// ReloadSSHD reloads sshd after its config changed.
	ReloadSSHD bool
	Now        func() time.Time // for the backup's name; default time.Now
}

// Prepare makes the host's containerd, CNI and sshd configuration what Satellite needs: CRI
// enabled, restrict_oom_score_adj where the host cannot lower oom_score_adj, the CNI plugin
// directory where the distribution installs it, a loopback CNI config when there is none, and
// PermitTunnel point-to-point for the login user when sshd does not permit it its tunnel. A
// config is backed up before it is changed; a host that needs nothing is left alone, so Prepare
// can run any number of times. It writes what it does to out.
func Prepare(ctx context.Context, h Commander, o PrepareOptions, out io.Writer) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SSHDConfig == "" {
		o.SSHDConfig = DefaultSSHDConfig
	}
	f, err := gatherFacts(ctx, h, o)
	if err != nil {
		return err
	}
	p, err := planPrepare(f, o)
	if err != nil {
		return err
	}
	sh, shErr := newRootShell(ctx, h)
	var note string
	if p.tunnel, note = sshdTunnel(ctx, h, sh, shErr, o); note != "" {
		p.notes = append(p.notes, note)
	}
	fmt.Fprint(out, p.describe())
	if p.empty() {
		return nil
	}
	if o.DryRun {
		fmt.Fprintln(out, "dry run: nothing was changed")
		return nil
	}
	if shErr != nil {
		return shErr
	}
	if err := p.apply(ctx, sh, o, out); err != nil {
		return err
	}
	return p.tunnel.apply(ctx, sh, o, out)
}

// hostFacts are what Prepare reads from the host.
type hostFacts struct {
	config          string // containerd's config.toml ("" when missing)
	configExists    bool
	containerdMajor int // from containerd --version; 0 unknown
	canLowerOOM     bool
	loopbackIn      []string // CNI plugin directories holding an executable loopback plugin
	confDir         string
	confFiles       []string // CNI configs in confDir
}

// candidateBinDirs are where distributions install the CNI plugins: the upstream default,
// Debian and Ubuntu, Fedora and RHEL.
var candidateBinDirs = []string{defaultCNIBinDir, "/usr/lib/cni", "/usr/libexec/cni"}

func gatherFacts(ctx context.Context, h Commander, o PrepareOptions) (hostFacts, error) {
	var f hostFacts
	var err error
	if f.config, f.configExists, err = catIfExists(ctx, h.Output, o.ContainerdConfig); err != nil {
		return f, err
	}
	cfg, err := parseContainerdConfig(f.config)
	if err != nil {
		return f, fmt.Errorf("%s: %w (fix it by hand; containerd would not start with it either)", o.ContainerdConfig, err)
	}
	f.confDir = o.CNIConfDir
	if f.confDir == "" {
		f.confDir = cfg.confDir()
	}
	dirs := unique(append(cfg.binDirs(), candidateBinDirs...))
	out, err := h.Output(ctx, factsProbe(dirs, f.confDir))
	if err != nil {
		return f, fmt.Errorf("look at the host: %w", err)
	}
	parseFacts(string(out), &f)
	return f, nil
}

// unique drops repeated strings, keeping the first of each.
func unique(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func factsProbe(binDirs []string, confDir string) string {
	var b strings.Builder
	b.WriteString(sbinPath + "echo \"containerd $(containerd --version 2>/dev/null)\"\ngrep CapBnd /proc/self/status\n")
	for _, d := range binDirs {
		fmt.Fprintf(&b, "[ -x %s/loopback ] && echo loopback %s\n", remote.Quote(d), remote.Quote(d))
	}
	// The extensions libcni loads (libcni.ConfFiles).
	c := remote.Quote(confDir)
	fmt.Fprintf(&b, "for f in %s/*.conf %s/*.conflist %s/*.json; do [ -f \"$f\" ] && echo \"conf $f\"; done\ntrue\n", c, c, c)
	return b.String()
}

// parseFacts reads factsProbe's output. The bounding set is read as doctor's check reads it;
// without a readable one, the host is taken to be an ordinary one, which may lower
// oom_score_adj.
func parseFacts(out string, f *hostFacts) {
	f.canLowerOOM = true
	if bnd, err := parseCapBnd(out); err == nil {
		f.canLowerOOM = bnd&(1<<capSysResource) != 0
	}
	for _, line := range strings.Split(out, "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "containerd":
			f.containerdMajor = containerdMajor(rest)
		case "loopback":
			f.loopbackIn = append(f.loopbackIn, rest)
		case "conf":
			f.confFiles = append(f.confFiles, rest)
		}
	}
}

// plan is what Prepare will change.
type plan struct {
	configPath         string
	oldConfig, config  string
	configExists       bool
	changes            []string
	conflist           string // path of the loopback CNI config to write; "": none
	notes              []string
	confDir            string
	containerdRestarts bool        // the config changed: containerd must restart to read it
	tunnel             *tunnelPlan // sshd's part; nil when sshd is left alone (a note says why)
}

func planPrepare(f hostFacts, o PrepareOptions) (*plan, error) {
	p := &plan{configPath: o.ContainerdConfig, oldConfig: f.config, configExists: f.configExists, confDir: f.confDir}
	cfg, err := parseContainerdConfig(f.config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.ContainerdConfig, err)
	}
	w := configWants{restrictOOMScoreAdj: !f.canLowerOOM}
	if !slices.ContainsFunc(cfg.binDirs(), func(d string) bool { return slices.Contains(f.loopbackIn, d) }) {
		if len(f.loopbackIn) > 0 {
			w.cniBinDir = f.loopbackIn[0]
		} else {
			p.notes = append(p.notes, "no CNI loopback plugin in "+strings.Join(unique(append(cfg.binDirs(), candidateBinDirs...)), ", ")+
				": install the CNI plugins (Debian, Ubuntu: sudo apt-get install containernetworking-plugins)")
		}
	}
	newVersion := 0
	if f.containerdMajor > 0 {
		newVersion = f.containerdMajor + 1
	}
	p.config, p.changes, err = fixContainerdConfig(f.config, newVersion, w)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.ContainerdConfig, err)
	}
	p.containerdRestarts = p.config != p.oldConfig
	if len(f.confFiles) == 0 {
		p.conflist = path.Join(f.confDir, loopbackConflistName)
	}
	return p, nil
}

func (p *plan) empty() bool { return p.containerdEmpty() && !p.tunnel.changes() }

func (p *plan) containerdEmpty() bool { return p.config == p.oldConfig && p.conflist == "" }

// describe says what the plan changes, with a unified diff of every file.
func (p *plan) describe() string {
	var b strings.Builder
	for _, n := range p.notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteString(p.describeContainerd())
	if p.tunnel != nil {
		b.WriteString(p.tunnel.describe())
	}
	return b.String()
}

// describeContainerd says what the plan changes in containerd's and CNI's config.
func (p *plan) describeContainerd() string {
	if p.containerdEmpty() {
		return fmt.Sprintf("nothing to change: %s and the CNI config in %s are as Satellite needs them\n", p.configPath, p.confDir)
	}
	var b strings.Builder
	if len(p.changes) > 0 {
		fmt.Fprintf(&b, "%s:\n", p.configPath)
		for _, c := range p.changes {
			fmt.Fprintf(&b, "  - %s\n", c)
		}
	}
	if p.conflist != "" {
		fmt.Fprintf(&b, "%s has no CNI config:\n  - add %s (loopback only: Satellite's pods use the host's network)\n", p.confDir, p.conflist)
	}
	if p.config != p.oldConfig {
		from := p.configPath
		if !p.configExists {
			from = "/dev/null"
		}
		b.WriteString(unifiedDiff(from, p.configPath, p.oldConfig, p.config))
	}
	if p.conflist != "" {
		b.WriteString(unifiedDiff("/dev/null", p.conflist, "", loopbackConflist))
	}
	return b.String()
}

func unifiedDiff(from, to, a, b string) string {
	s, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(a), B: splitLines(b), FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil { // only a failing writer errs, and this one is a buffer
		return fmt.Sprintf("(no diff: %v)\n", err)
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// splitLines splits text into lines that keep their newline; a last line without one gets it.
func splitLines(text string) []string {
	if text == "" {
		return nil
	}
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		return lines[:len(lines)-1]
	}
	lines[len(lines)-1] += "\n"
	return lines
}

// apply backs up and writes containerd's config, writes the CNI config, and restarts
// containerd when asked to.
func (p *plan) apply(ctx context.Context, sh rootShell, o PrepareOptions, out io.Writer) error {
	if p.config != p.oldConfig {
		if p.configExists {
			if _, err := sh.backup(ctx, p.configPath, o.Now(), out); err != nil {
				return err
			}
		}
		if err := sh.writeFile(ctx, p.configPath, p.config); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", p.configPath)
	}
	if p.conflist != "" {
		if err := sh.writeFile(ctx, p.conflist, loopbackConflist); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", p.conflist)
	}
	if !p.containerdRestarts {
		return nil
	}
	if !o.RestartContainerd {
		fmt.Fprintln(out, "containerd reads its config only at start: restart it (sudo systemctl restart containerd), or run this with --restart-containerd")
		return nil
	}
	if _, err := sh.run(ctx, "systemctl restart containerd"); err != nil {
		return fmt.Errorf("restart containerd: %w", err)
	}
	fmt.Fprintln(out, "restarted containerd")
	return nil
}

// rootShell runs commands as root: directly when the login is root, else through sudo -n
// (no password prompt: Prepare runs unattended).
type rootShell struct {
	h    Commander
	sudo bool
}

func newRootShell(ctx context.Context, h Commander) (rootShell, error) {
	out, err := h.Output(ctx, "id -u")
	if err != nil {
		return rootShell{}, fmt.Errorf("id -u: %w", err)
	}
	if strings.TrimSpace(string(out)) == "0" {
		return rootShell{h: h}, nil
	}
	if _, err := h.Output(ctx, "sudo -n true"); err != nil {
		return rootShell{}, fmt.Errorf("preparing the host takes root: log in as root, or give the user passwordless sudo (sudo -n true: %w)", err)
	}
	return rootShell{h: h, sudo: true}, nil
}

func (s rootShell) run(ctx context.Context, cmd string) ([]byte, error) {
	if s.sudo {
		cmd = "sudo -n sh -c " + remote.Quote(cmd)
	}
	return s.h.Output(ctx, cmd)
}

// catIfExists reads the file at p with run (the login's or root's shell); a missing file is
// "", false.
func catIfExists(ctx context.Context, run func(context.Context, string) ([]byte, error), p string) (string, bool, error) {
	out, err := run(ctx, "[ -e "+remote.Quote(p)+" ] || exit 3; cat -- "+remote.Quote(p))
	var exit *remote.ExitError
	switch {
	case errors.As(err, &exit) && exit.Code == 3:
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read %s: %w", p, err)
	}
	return string(out), true, nil
}

// backupSuffix marks the copies Prepare keeps of the files it changes.
const backupSuffix = ".satellite-backup-"

// backup copies the file at p beside it, named with now, keeping its mode and owner, and
// says so on out; it returns the copy's path.
func (s rootShell) backup(ctx context.Context, p string, now time.Time, out io.Writer) (string, error) {
	b := p + backupSuffix + now.UTC().Format("20060102T150405Z")
	if _, err := s.run(ctx, "cp -p -- "+remote.Quote(p)+" "+remote.Quote(b)); err != nil {
		return "", fmt.Errorf("back up %s: %w", p, err)
	}
	fmt.Fprintf(out, "backed up %s to %s\n", p, b)
	return b, nil
}

// writeFile replaces the file at p with data through a temporary file beside it, keeping the
// old file's mode and owner; a new file gets 0644.
func (s rootShell) writeFile(ctx context.Context, p, data string) error {
	q, tmp := remote.Quote(p), remote.Quote(p+".satellite-tmp")
	cmd := "set -e; umask 022; mkdir -p -- " + remote.Quote(path.Dir(p)) + "\n" +
		"printf %s " + remote.Quote(base64.StdEncoding.EncodeToString([]byte(data))) + " | base64 -d > " + tmp + "\n" +
		"if [ -e " + q + " ]; then chmod \"$(stat -c %a " + q + ")\" " + tmp + "; chown \"$(stat -c %u:%g " + q + ")\" " + tmp + "; fi\n" +
		"mv -f -- " + tmp + " " + q
	if _, err := s.run(ctx, cmd); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
