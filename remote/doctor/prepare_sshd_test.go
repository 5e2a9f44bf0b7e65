package doctor

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/satellite-vk/satellite/remote"
)

// preparedHost is a host whose containerd and CNI need nothing, logged in as root over SSH.
func preparedHost(rules ...rule) *fakeHost {
	return &fakeHost{rules: append(rules,
		rule{key: "cat -- '/etc/containerd/config.toml'", out: debianConfig},
		rule{key: "grep CapBnd", out: "CapBnd:\t000001ffffffffff\nloopback /usr/lib/cni\nconf /etc/cni/net.d/10-x.conflist\n"},
		rule{key: "id -un;", out: "root\n198.51.100.7 52144 203.0.113.10 22\n"},
		rule{key: "id -u", out: "0\n"},
	)}
}

func TestPrepareLeavesSSHDAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    *fakeHost
		note string
	}{
		{"no sshd", preparedHost(rule{key: "sshd -T", err: &remote.ExitError{Code: 3}}),
			"note: sshd left alone: no sshd on the host"},
		{"sshd rejects its config", preparedHost(rule{key: "sshd -T", err: &remote.ExitError{Code: 255, Stderr: "/etc/ssh/sshd_config line 3: Bad configuration option: Nope"}}),
			"note: sshd left alone: sshd -T -f /etc/ssh/sshd_config -C user=root,host=198.51.100.7,addr=198.51.100.7,laddr=203.0.113.10,lport=22: exit status 255: /etc/ssh/sshd_config line 3: Bad configuration option"},
		{"no root", preparedHost(rule{key: "id -un;", out: "ubuntu\n"}, rule{key: "id -u", out: "1000\n"},
			rule{key: "sudo -n true", err: &remote.ExitError{Code: 1, Stderr: "sudo: a password is required"}}),
			"note: sshd left alone: reading its effective config (sshd -T) takes root: preparing the host takes root"},
		{"a user no Match line can name", preparedHost(rule{key: "id -un;", out: "a,b\n"}), `note: sshd left alone: login user "a,b" cannot be named`},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := Prepare(context.Background(), tt.h, PrepareOptions{ContainerdConfig: "/etc/containerd/config.toml"}, &out)
		if err != nil || !strings.Contains(out.String(), tt.note) || !strings.Contains(out.String(), "nothing to change: /etc/containerd/config.toml") {
			t.Errorf("%s: %v\n%s", tt.name, err, out.String())
		}
	}
}

func TestPrepareSSHDDryRun(t *testing.T) {
	t.Parallel()
	const spec = "'user=root,host=198.51.100.7,addr=198.51.100.7,laddr=203.0.113.10,lport=22'"
	h := preparedHost(
		rule{key: "sshd -T -f '/etc/ssh/sshd_config' -C " + spec, out: "port 22\npermittunnel no\npidfile /run/sshd.pid\n"},
		rule{key: "cat -- '/etc/ssh/sshd_config'", out: debianSSHDConfig},
		rule{key: "[ -e '/etc/ssh/sshd_config.d/60-satellite-tunnel.conf' ] || exit 3", err: &remote.ExitError{Code: 3}},
	)
	var out bytes.Buffer
	if err := Prepare(context.Background(), h, PrepareOptions{ContainerdConfig: "/etc/containerd/config.toml", DryRun: true}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"nothing to change: /etc/containerd/config.toml",
		"/etc/ssh/sshd_config.d/60-satellite-tunnel.conf:\n  - permit root Satellite's layer-3 tunnel",
		"--- /dev/null\n+++ /etc/ssh/sshd_config.d/60-satellite-tunnel.conf\n",
		"+Match User root\n+\tPermitTunnel point-to-point\n",
		"dry run: nothing was changed\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReloadSSHD(t *testing.T) {
	t.Parallel()
	p := &tunnelPlan{pidFile: "/run/sshd.pid"}
	var out bytes.Buffer
	sh := rootShell{h: &fakeHost{rules: []rule{{key: "systemctl reload", out: "systemctl reload ssh\n"}}}}
	if err := p.reload(context.Background(), sh, true, &out); err != nil ||
		!strings.HasPrefix(out.String(), "reloaded sshd (systemctl reload ssh): new connections may open Satellite's tunnel. A reload ends no connection") {
		t.Errorf("reload: %v: %s", err, out.String())
	}
	out.Reset()
	if err := p.reload(context.Background(), sh, false, &out); err != nil ||
		!strings.Contains(out.String(), "or sudo kill -HUP $(cat /run/sshd.pid)), or run this with --reload-sshd. A reload ends no connection.") {
		t.Errorf("no reload: %v: %s", err, out.String())
	}
	sh = rootShell{h: &fakeHost{rules: []rule{{key: "kill -HUP", err: &remote.ExitError{Code: 3}}}}}
	p.pidFile = "none"
	if err := p.reload(context.Background(), sh, true, &out); err == nil || !strings.Contains(err.Error(), "/run/sshd.pid is missing") {
		t.Errorf("nothing to reload: %v", err)
	}
}
