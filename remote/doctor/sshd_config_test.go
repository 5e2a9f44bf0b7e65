package doctor

import (
	"strings"
	"testing"
)

// debianSSHDConfig is the start of Debian 12's /etc/ssh/sshd_config.
const debianSSHDConfig = `# This is the sshd server system-wide configuration file.

Include /etc/ssh/sshd_config.d/*.conf

#Port 22
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
Subsystem	sftp	/usr/lib/openssh/sftp-server
`

func TestDropInTarget(t *testing.T) {
	t.Parallel()
	const want = "/etc/ssh/sshd_config.d/60-satellite-tunnel.conf"
	tests := []struct {
		name, config, want string
	}{
		{"debian", debianSSHDConfig, want},
		{"relative to /etc/ssh", "Include sshd_config.d/*.conf\n", want},
		{"keyword=value, lower case, quoted", "include=\"/etc/ssh/sshd_config.d/*.conf\"\n", want},
		{"second argument", "Include /etc/ssh/extra.conf /etc/ssh/sshd_config.d/*\n", want},
		{"other directory", "Include /srv/ssh.d/*.conf\n", "/srv/ssh.d/60-satellite-tunnel.conf"},
		{"pattern that does not take the name", "Include /etc/ssh/sshd_config.d/*.cfg\n", ""},
		{"one file", "Include /etc/ssh/extra.conf\n", ""},
		{"glob in the directory", "Include /etc/ssh/*/*.conf\n", ""},
		{"commented out", "#Include /etc/ssh/sshd_config.d/*.conf\n", ""},
		{"inside a Match block: read only for what it matches", "Match User bob\n  Include /etc/ssh/sshd_config.d/*.conf\n", ""},
		{"before a Match block", "Include /etc/ssh/sshd_config.d/*.conf\nMatch User bob\n  X11Forwarding yes\n", want},
		{"no Include", "PermitRootLogin prohibit-password\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		if got := dropInTarget(tt.config); got != tt.want {
			t.Errorf("%s: dropInTarget = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMatchSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		user, conn, want string
	}{
		{"ubuntu", "198.51.100.7 52144 203.0.113.10 22\n", "user=ubuntu,host=198.51.100.7,addr=198.51.100.7,laddr=203.0.113.10,lport=22"},
		{"root", "2001:db8::7 52144 2001:db8::10 2222", "user=root,host=2001:db8::7,addr=2001:db8::7,laddr=2001:db8::10,lport=2222"},
		{"root", "", "user=root"},
		{"root", "not an address 1 2", "user=root"},
		{"root", "192.0.2.1 1 192.0.2.2 99999", "user=root"},
	}
	for _, tt := range tests {
		if got := matchSpec(tt.user, tt.conn); got != tt.want {
			t.Errorf("matchSpec(%q, %q) = %q, want %q", tt.user, tt.conn, got, tt.want)
		}
	}
	for user, ok := range map[string]bool{"root": true, "ubuntu": true, "svc-satellite": true, "machine$": true,
		"a,b": false, "*": false, "!bob": false, "a b": false, "": false} {
		if loginUser.MatchString(user) != ok {
			t.Errorf("loginUser(%q) = %v, want %v", user, !ok, ok)
		}
	}
}

func TestSSHDSetting(t *testing.T) {
	t.Parallel()
	out := "port 22\npermitrootlogin without-password\npermittunnel point-to-point\npidfile /run/sshd.pid\n"
	if got := sshdSetting(out, "permittunnel"); got != "point-to-point" {
		t.Errorf("permittunnel = %q", got)
	}
	if got := sshdSetting(out, "pidfile"); got != "/run/sshd.pid" {
		t.Errorf("pidfile = %q", got)
	}
	if got := sshdSetting(out, "permit"); got != "" {
		t.Errorf("a prefix matched: %q", got)
	}
}

func TestPermitTunnelInMatch(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"PermitTunnel no\n": false,
		"PermitTunnel no\nMatch User bob\n  X11Forwarding no\n": false,
		"Match User root\n  PermitTunnel no\n":                  true,
		"match all\n\tpermittunnel=no\n":                        true,
		"Match User root\n  #PermitTunnel no\n":                 false,
		"":                                                      false,
	}
	for config, want := range tests {
		if got := permitTunnelInMatch(config); got != want {
			t.Errorf("permitTunnelInMatch(%q) = %v, want %v", config, got, want)
		}
	}
}

func TestPlanTunnel(t *testing.T) {
	t.Parallel()
	const main, dropIn = "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/60-satellite-tunnel.conf"
	block := tunnelBlock("ubuntu")
	facts := func(effective, target, text string, exists bool) tunnelFacts {
		return tunnelFacts{user: "ubuntu", spec: "user=ubuntu", effective: effective, mainPath: main,
			target: target, targetText: text, targetExists: exists}
	}
	tests := []struct {
		name   string
		f      tunnelFacts
		text   string // "": no change
		status string
	}{
		{"point-to-point already", facts("point-to-point", dropIn, "", false), "", "nothing to change for sshd: it permits ubuntu"},
		{"yes already", facts("yes", main, debianSSHDConfig, true), "", "nothing to change for sshd"},
		{"debian: a drop-in", facts("no", dropIn, "", false), block, "permit ubuntu Satellite's layer-3 tunnel"},
		{"ethernet is layer 2 only", facts("ethernet", dropIn, "", false), block, "permittunnel ethernet now"},
		{"a drop-in of another user is replaced", facts("no", dropIn, tunnelBlock("bob"), true), block, "Match User ubuntu"},
		{"no Include: appended", facts("no", main, "UsePAM yes\nMatch User bob\n  X11Forwarding yes\n", true),
			"UsePAM yes\nMatch User bob\n  X11Forwarding yes\n\n" + block, "Match User ubuntu"},
		{"no newline at the end", facts("no", main, "UsePAM yes", true), "UsePAM yes\n\n" + block, "Match User ubuntu"},
		{"empty main config", facts("no", main, "", true), block, "Match User ubuntu"},
		{"drop-in there, an earlier Match wins", facts("no", dropIn, block, true), "", "a Match block that applies to ubuntu before it"},
		{"block appended, an earlier Match wins", facts("no", main, "Match User ubuntu\n  PermitTunnel no\n\n"+block, true), "", "fix that block"},
	}
	for _, tt := range tests {
		p := planTunnel(tt.f)
		if p.changes() != (tt.text != "") || p.text != tt.text || !strings.Contains(p.status, tt.status) {
			t.Errorf("%s: changes %v, status %q\ngot:\n%s\nwant:\n%s", tt.name, p.changes(), p.status, p.text, tt.text)
			continue
		}
		if !p.changes() {
			continue
		}
		// A second run: sshd now permits it, or (unchanged effective setting) the block is there.
		again := tt.f
		again.targetText, again.targetExists = p.text, true
		if q := planTunnel(again); q.changes() {
			t.Errorf("%s: a second plan writes again:\n%s", tt.name, q.text)
		}
		again.effective = "point-to-point"
		if q := planTunnel(again); q.changes() || !strings.HasPrefix(q.describe(), "nothing to change for sshd") {
			t.Errorf("%s: second plan once permitted: %s", tt.name, q.describe())
		}
	}
}

func TestTunnelPlanDescribe(t *testing.T) {
	t.Parallel()
	const dropIn = "/etc/ssh/sshd_config.d/60-satellite-tunnel.conf"
	p := planTunnel(tunnelFacts{user: "root", spec: "user=root", effective: "no", mainPath: "/etc/ssh/sshd_config", target: dropIn})
	want := dropIn + ":\n  - permit root Satellite's layer-3 tunnel: Match User root, PermitTunnel point-to-point (sshd -T -C user=root: permittunnel no now)\n" +
		"--- /dev/null\n+++ " + dropIn + "\n@@ -0,0 +1,3 @@\n" +
		"+# Satellite's layer-3 tunnel (tun@openssh.com) for its login user only; written by satellite host prepare.\n" +
		"+Match User root\n+\tPermitTunnel point-to-point\n"
	if got := p.describe(); got != want {
		t.Errorf("describe:\n%s\nwant:\n%s", got, want)
	}
	p = planTunnel(tunnelFacts{user: "root", spec: "user=root", effective: "no", mainPath: "/etc/ssh/sshd_config",
		target: "/etc/ssh/sshd_config", targetText: "UsePAM yes\n", targetExists: true})
	if got := p.describe(); !strings.Contains(got, "--- /etc/ssh/sshd_config\n+++ /etc/ssh/sshd_config\n@@ -1 +1,5 @@\n UsePAM yes\n+\n+# Satellite") {
		t.Errorf("append diff:\n%s", got)
	}
}
