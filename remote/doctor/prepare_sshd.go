package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/satellite-vk/satellite/remote"
)

// sshdTunnel plans the sshd part of Prepare. sshd -T reads the host keys, so it takes root;
// without root, or when sshd is missing or rejects its config, sshd is left alone and the
// reason comes back as a note.
func sshdTunnel(ctx context.Context, h Commander, sh rootShell, shErr error, o PrepareOptions) (*tunnelPlan, string) {
	if shErr != nil {
		return nil, "sshd left alone: reading its effective config (sshd -T) takes root: " + shErr.Error()
	}
	f, err := gatherTunnelFacts(ctx, h, sh, o.SSHDConfig)
	if err != nil {
		return nil, "sshd left alone: " + err.Error()
	}
	return planTunnel(f), ""
}

func gatherTunnelFacts(ctx context.Context, h Commander, sh rootShell, mainPath string) (tunnelFacts, error) {
	f := tunnelFacts{mainPath: mainPath}
	// As the login, not through sudo: sudo drops $SSH_CONNECTION.
	out, err := h.Output(ctx, `id -un; printf '%s\n' "$SSH_CONNECTION"`)
	if err != nil {
		return f, fmt.Errorf("id -un: %w", err)
	}
	user, conn, _ := strings.Cut(string(out), "\n")
	if f.user = strings.TrimSpace(user); !loginUser.MatchString(f.user) {
		return f, fmt.Errorf("login user %q cannot be named in a Match User line", f.user)
	}
	f.spec = matchSpec(f.user, conn)
	t, err := sshdEffective(ctx, sh, mainPath, f.spec)
	if err != nil {
		return f, err
	}
	f.effective, f.pidFile = sshdSetting(t, "permittunnel"), sshdSetting(t, "pidfile")
	if f.mainConfig, _, err = catIfExists(ctx, sh.run, mainPath); err != nil {
		return f, err
	}
	if f.target = dropInTarget(f.mainConfig); f.target == "" {
		f.target = mainPath
	}
	f.targetText, f.targetExists, err = catIfExists(ctx, sh.run, f.target)
	return f, err
}

// sshdEffective is sshd -T's output: the settings a connection matching spec gets.
func sshdEffective(ctx context.Context, sh rootShell, mainPath, spec string) (string, error) {
	out, err := sh.run(ctx, sbinPath+"command -v sshd >/dev/null || exit 3; sshd -T -f "+remote.Quote(mainPath)+" -C "+remote.Quote(spec))
	var exit *remote.ExitError
	switch {
	case errors.As(err, &exit) && exit.Code == 3:
		return "", errors.New("no sshd on the host (not in PATH, /usr/sbin or /sbin)")
	case err != nil:
		return "", fmt.Errorf("sshd -T -f %s -C %s: %w", mainPath, spec, err)
	}
	return string(out), nil
}

// apply writes the plan's file, checks that sshd accepts the result and that it gives the
// user the tunnel, and puts the old file back when either fails. It then reloads sshd when
// asked to.
func (p *tunnelPlan) apply(ctx context.Context, sh rootShell, o PrepareOptions, out io.Writer) error {
	if !p.changes() {
		return nil
	}
	restore, err := p.write(ctx, sh, o.Now(), out)
	if err != nil {
		return err
	}
	if err := p.verify(ctx, sh); err != nil {
		if rerr := restore(ctx); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return p.reload(ctx, sh, o.ReloadSSHD, out)
}

// write backs up the target if it exists and writes the new text; restore undoes both.
func (p *tunnelPlan) write(ctx context.Context, sh rootShell, now time.Time, out io.Writer) (restore func(context.Context) error, err error) {
	q := remote.Quote(p.target)
	undo := "rm -f -- " + q
	if p.exists {
		backup, err := sh.backup(ctx, p.target, now, out)
		if err != nil {
			return nil, err
		}
		undo = "cp -p -- " + remote.Quote(backup) + " " + q
	}
	if err := sh.writeFile(ctx, p.target, p.text); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "wrote %s\n", p.target)
	return func(ctx context.Context) error {
		if _, err := sh.run(ctx, undo); err != nil {
			return fmt.Errorf("put %s back (%s): %w", p.target, undo, err)
		}
		fmt.Fprintf(out, "put %s back as it was\n", p.target)
		return nil
	}, nil
}

// verify runs sshd -t on the new config, then asks sshd -T whether the user now gets the
// tunnel. A Match block that applies to the user before Satellite's and sets PermitTunnel wins
// (sshd keeps the first value a matching block sets), and global settings never override a
// Match block: so a failure here names the files that set PermitTunnel.
func (p *tunnelPlan) verify(ctx context.Context, sh rootShell) error {
	if _, err := sh.run(ctx, sbinPath+"sshd -t -f "+remote.Quote(p.mainPath)); err != nil {
		return fmt.Errorf("sshd -t rejects %s with the change to %s, so it was undone: %w", p.mainPath, p.target, err)
	}
	t, err := sshdEffective(ctx, sh, p.mainPath, p.spec)
	if err != nil {
		return err
	}
	if v := sshdSetting(t, "permittunnel"); !tunnelPermitted(v) {
		return fmt.Errorf("with %s written, sshd -T -C %s still says permittunnel %s for %s, so it was undone: "+
			"a Match block that applies to %s before Satellite's sets PermitTunnel (sshd takes the first value); "+
			"fix it in %s, then run this again", p.target, p.spec, v, p.user, p.user, p.permitTunnelFiles(ctx, sh))
	}
	return nil
}

// permitTunnelFiles lists the files that set PermitTunnel in a Match block: the main config
// and the files beside the target, without the target and backups.
func (p *tunnelPlan) permitTunnelFiles(ctx context.Context, sh rootShell) string {
	cmd := "grep -lis '^[[:space:]]*PermitTunnel' -- " + remote.Quote(p.mainPath)
	if p.target != p.mainPath {
		cmd += " " + remote.Quote(path.Dir(p.target)) + "/*"
	}
	out, _ := sh.run(ctx, cmd+"; true")
	var files []string
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f == "" || f == p.target || strings.Contains(f, backupSuffix) || strings.HasSuffix(f, ".satellite-tmp") {
			continue
		}
		if text, _, err := catIfExists(ctx, sh.run, f); err == nil && permitTunnelInMatch(text) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return p.mainPath + " or a file it includes"
	}
	return strings.Join(files, " or ")
}

// reloadSSHDCommand reloads sshd through systemd where systemd runs (Debian's unit is ssh,
// Fedora's sshd), else sends SIGHUP to the pid in its PidFile: sshd's listener re-reads its
// config then (sshd(8)); the sessions already open keep theirs.
const reloadSSHDCommand = `if [ -d /run/systemd/system ]; then
  for u in ssh sshd; do systemctl reload "$u" 2>/dev/null && { echo "systemctl reload $u"; exit 0; }; done
fi
[ -s "$1" ] || exit 3
pid=$(cat "$1") && kill -HUP "$pid" && echo "kill -HUP $pid"`

func (p *tunnelPlan) reload(ctx context.Context, sh rootShell, reload bool, out io.Writer) error {
	pidFile := p.pidFile
	if pidFile == "" || pidFile == "none" {
		pidFile = "/run/sshd.pid"
	}
	if !reload {
		fmt.Fprintf(out, "sshd reads its config at start and on reload: reload it (sudo systemctl reload ssh, or sshd; "+
			"or sudo kill -HUP $(cat %s)), or run this with --reload-sshd. A reload ends no connection.\n", pidFile)
		return nil
	}
	cmd := sbinPath + "set -- " + remote.Quote(pidFile) + "\n" + reloadSSHDCommand
	how, err := sh.run(ctx, cmd)
	var exit *remote.ExitError
	switch {
	case errors.As(err, &exit) && exit.Code == 3:
		return fmt.Errorf("reload sshd: no systemd unit ssh or sshd reloaded and %s is missing; reload it by hand", pidFile)
	case err != nil:
		return fmt.Errorf("reload sshd: %w", err)
	}
	fmt.Fprintf(out, "reloaded sshd (%s): new connections may open Satellite's tunnel. A reload ends no connection: "+
		"this one and a running Satellite's stay up, with the settings they started with, so a running Satellite "+
		"opens its tunnel on its next SSH connection (restart it to have it now)\n", strings.TrimSpace(string(how)))
	return nil
}
