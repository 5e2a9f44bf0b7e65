package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/satellite-vk/satellite/remote/doctor"
)

func parseDoctorFlags(t *testing.T, args []string, env map[string]string) (*hostOptions, error) {
	t.Helper()
	var o hostOptions
	fs := pflag.NewFlagSet("doctor", pflag.ContinueOnError)
	bindHostFlags(fs, &o)
	bindDoctorFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &o, o.complete(fs, func(k string) string { return env[k] })
}

func TestHostFlags(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ecdsa"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HOME":                        home,
		"SATELLITE_SSH":               "ubuntu@192.0.2.10",
		"SATELLITE_CONTAINERD_SOCKET": "/run/k3s/containerd/containerd.sock",
		"SATELLITE_CONTAINERD_ROOT":   "/data/containerd", // the command line wins
	}
	o, err := parseDoctorFlags(t, []string{"-o", "json", "--containerd-root", "/srv/containerd"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.ssh != "ubuntu@192.0.2.10" || o.socket != "/run/k3s/containerd/containerd.sock" || o.containerdRoot != "/srv/containerd" || o.output != "json" {
		t.Errorf("options %+v", o)
	}
	if o.sshKey != filepath.Join(home, ".ssh", "id_ecdsa") || o.knownHosts != filepath.Join(home, ".ssh", "known_hosts") {
		t.Errorf("defaults from HOME: key %q, known_hosts %q", o.sshKey, o.knownHosts)
	}

	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"HOME": home}, "--ssh is required"},
		{[]string{"--ssh", "u@h"}, map[string]string{"HOME": t.TempDir()}, "--ssh-key is required"},
		{[]string{"--ssh", "u@h", "--ssh-key", "k"}, nil, "--known-hosts is required"},
		{[]string{"--ssh", "u@h", "--ssh-key", "k", "--known-hosts", "kh", "-o", "yaml"}, nil, "want text or json"},
	} {
		if _, err := parseDoctorFlags(t, tt.args, tt.env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestHostCommandWiring(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := newCommand(func(string) string { return "" })
	cmd.SetArgs([]string{"host", "prepare", "--ssh", "root@192.0.2.10", "--ssh-key", filepath.Join(dir, "missing"), "--known-hosts", "kh", "--dry-run"})
	cmd.SetOut(new(bytes.Buffer))
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "read ssh private key") {
		t.Errorf("host prepare with a missing key: %v", err)
	}
}

func TestPrepareCommandAndJSON(t *testing.T) {
	t.Parallel()
	o := hostOptions{containerdConfig: defaultContainerdConfig}
	if got := o.prepareCommand("root@h:22"); got != "satellite host prepare --ssh root@h:22" {
		t.Errorf("prepareCommand = %q", got)
	}
	o.containerdConfig = "/etc/k3s/config.toml"
	if got := o.prepareCommand("root@h:22"); got != "satellite host prepare --ssh root@h:22 --containerd-config /etc/k3s/config.toml" {
		t.Errorf("prepareCommand = %q", got)
	}

	var b bytes.Buffer
	results := []doctor.Result{{Name: "ssh", Status: doctor.OK, Detail: "d"}, {Name: "cgroup", Status: doctor.Fail, Detail: "x", Fix: "f"}}
	if err := writeResults(&b, "json", "root@h:22", results); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Host   string
		OK     bool
		Checks []doctor.Result
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Host != "root@h:22" || got.OK || len(got.Checks) != 2 || got.Checks[1].Fix != "f" || got.Checks[1].Status != "fail" {
		t.Errorf("json %s", b.String())
	}
}
