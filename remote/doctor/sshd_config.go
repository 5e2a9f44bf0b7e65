package doctor

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// DefaultSSHDConfig is sshd's main config file.
const DefaultSSHDConfig = "/etc/ssh/sshd_config"

// tunnelDropIn is the name of the drop-in Prepare writes where the main config includes a
// directory of them: after the 50-*.conf of Debian, Ubuntu and cloud-init.
const tunnelDropIn = "60-satellite-tunnel.conf"

// sshdDir is where sshd looks for an Include without an absolute path (sshd_config(5)).
const sshdDir = "/etc/ssh"

// tunnelBlock is the Match block that permits user Satellite's layer-3 tunnel
// (tun@openssh.com, point-to-point) and nothing else.
func tunnelBlock(user string) string {
	return "# Satellite's layer-3 tunnel (tun@openssh.com) for its login user only; written by satellite host prepare.\n" +
		"Match User " + user + "\n" +
		"\tPermitTunnel point-to-point\n"
}

// tunnelPermitted tells whether sshd's effective PermitTunnel (sshd -T) lets Satellite open
// its tunnel: "yes" or "point-to-point"; "ethernet" is layer 2 only.
func tunnelPermitted(v string) bool { return v == "yes" || v == "point-to-point" }

// loginUser matches the user names Prepare puts in a Match User line: no pattern characters
// (*, ?, !, a comma) and nothing sshd -C would split on.
var loginUser = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$`)

// matchSpec is sshd -T's -C connection spec for user logging in over the connection
// $SSH_CONNECTION describes ("client-addr client-port server-addr server-port"), so that
// Match Address, Host, LocalAddress and LocalPort blocks apply as they do to Satellite. host is
// the address: sshd matches Host against it unless UseDNS is on (off by default since
// OpenSSH 6.8). OpenSSH before 8.x requires user, host and addr together; 9.2 takes any of
// them, so without $SSH_CONNECTION the spec is the user alone.
func matchSpec(user, sshConnection string) string {
	spec := "user=" + user
	f := strings.Fields(sshConnection)
	if len(f) != 4 {
		return spec
	}
	client, err1 := netip.ParseAddr(f[0])
	server, err2 := netip.ParseAddr(f[2])
	port, err3 := strconv.ParseUint(f[3], 10, 16)
	if err1 != nil || err2 != nil || err3 != nil {
		return spec
	}
	return fmt.Sprintf("%s,host=%s,addr=%s,laddr=%s,lport=%d", spec, client, client, server, port)
}

// sshdSetting is keyword's value in sshd -T's output ("keyword value" lines, lower case).
func sshdSetting(out, keyword string) string {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == keyword {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// configLine splits an sshd_config line into its keyword and arguments; a comment or blank
// line has no keyword. sshd takes "Keyword value" and "Keyword=value" and strips double quotes.
func configLine(line string) (keyword string, args []string) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", nil
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, nil
	}
	keyword, rest := line[:i], strings.TrimLeft(line[i:], " \t")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, "="), " \t")
	for _, a := range strings.Fields(rest) {
		if strings.HasPrefix(a, "#") {
			break
		}
		args = append(args, strings.Trim(a, `"`))
	}
	return keyword, args
}

// dropInTarget is where the drop-in goes when the main config includes a directory whose
// pattern takes tunnelDropIn (Debian's `Include /etc/ssh/sshd_config.d/*.conf`), and "" when it
// includes none. Only an Include before the first Match counts: one inside a Match block is
// read only for the connections that block matches, while one in the global section is read
// for all, and a Match block in the included file ends with that file (sshd -T, OpenSSH 9.2).
func dropInTarget(mainConfig string) string {
	for _, line := range strings.Split(mainConfig, "\n") {
		kw, args := configLine(line)
		if strings.EqualFold(kw, "match") {
			return ""
		}
		if !strings.EqualFold(kw, "include") {
			continue
		}
		for _, a := range args {
			if !path.IsAbs(a) {
				a = path.Join(sshdDir, a)
			}
			dir, pattern := path.Split(a)
			if strings.ContainsAny(dir, `*?[\`) {
				continue
			}
			if ok, err := path.Match(pattern, tunnelDropIn); err == nil && ok {
				return path.Join(dir, tunnelDropIn)
			}
		}
	}
	return ""
}

// permitTunnelInMatch tells whether config sets PermitTunnel inside a Match block: only such
// a line can take precedence over Satellite's block, since no global setting overrides a Match
// block's.
func permitTunnelInMatch(config string) bool {
	inMatch := false
	for _, line := range strings.Split(config, "\n") {
		kw, _ := configLine(line)
		switch {
		case strings.EqualFold(kw, "match"):
			inMatch = true
		case inMatch && strings.EqualFold(kw, "permittunnel"):
			return true
		}
	}
	return false
}

// tunnelFacts are what Prepare reads about the host's sshd.
type tunnelFacts struct {
	user       string // Satellite's login user (id -un)
	spec       string // sshd -T -C for that user
	effective  string // PermitTunnel for it, from sshd -T
	pidFile    string // sshd -T's pidfile
	mainPath   string
	mainConfig string
	// target is the file Prepare would write: the drop-in, or mainPath; targetText its text.
	target       string
	targetText   string
	targetExists bool
}

// tunnelPlan is what Prepare changes in sshd's config: target's text becomes text, unless
// target is "". A plan that changes nothing says why in status.
type tunnelPlan struct {
	user, spec, pidFile, mainPath string
	target                        string
	old, text                     string
	exists                        bool
	status                        string
}

// planTunnel decides what to write for f. It writes nothing when sshd already permits the
// tunnel, and nothing when what it would write is already there: then a Match block before
// it decides (a note says where to look).
func planTunnel(f tunnelFacts) *tunnelPlan {
	p := &tunnelPlan{user: f.user, spec: f.spec, pidFile: f.pidFile, mainPath: f.mainPath,
		old: f.targetText, exists: f.targetExists}
	if tunnelPermitted(f.effective) {
		p.status = fmt.Sprintf("nothing to change for sshd: it permits %s Satellite's tunnel (sshd -T -C %s: permittunnel %s)", f.user, f.spec, f.effective)
		return p
	}
	block := tunnelBlock(f.user)
	text := block
	if f.target == f.mainPath {
		text = withBlock(f.targetText, block)
	}
	if strings.Contains(f.targetText, block) {
		p.status = fmt.Sprintf("sshd: %s already has Satellite's Match block for %s, but sshd -T -C %s says permittunnel %s: "+
			"a Match block that applies to %s before it sets PermitTunnel (sshd takes the first value), in %s or a file it includes; fix that block",
			f.target, f.user, f.spec, f.effective, f.user, f.mainPath)
		return p
	}
	p.target, p.text = f.target, text
	p.status = fmt.Sprintf("permit %s Satellite's layer-3 tunnel: Match User %s, PermitTunnel point-to-point (sshd -T -C %s: permittunnel %s now)",
		f.user, f.user, f.spec, f.effective)
	return p
}

// withBlock appends block to the end of config, after a blank line.
func withBlock(config, block string) string {
	switch {
	case config == "":
		return block
	case !strings.HasSuffix(config, "\n"):
		config += "\n"
	}
	return config + "\n" + block
}

func (p *tunnelPlan) changes() bool { return p != nil && p.target != "" }

// describe says what the plan does to sshd's config, with a diff.
func (p *tunnelPlan) describe() string {
	if !p.changes() {
		return p.status + "\n"
	}
	from := p.target
	if !p.exists {
		from = "/dev/null"
	}
	return fmt.Sprintf("%s:\n  - %s\n", p.target, p.status) + unifiedDiff(from, p.target, p.old, p.text)
}
