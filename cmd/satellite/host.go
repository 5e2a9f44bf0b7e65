package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/satellite-vk/satellite/remote"
	"github.com/satellite-vk/satellite/remote/doctor"
)

// hostOptions are the flags of `satellite host doctor` and `satellite host prepare`. The
// connection and host flags are the main command's, with the same SATELLITE_* variables, so
// the commands run as they are inside Satellite's pod.
type hostOptions struct {
	ssh, sshKey, knownHosts string
	containerdConfig        string
	timeout                 time.Duration

	socket, containerdRoot, podLogDir string   // doctor
	output                            string   // doctor: text or json
	clusterRanges                     []string // doctor: the ranges Satellite routes into the tunnel

	cniConfDir                  string // prepare
	dryRun, restart, reloadSSHD bool   // prepare
}

const defaultContainerdConfig = "/etc/containerd/config.toml"

func newHostCommand(getenv func(string) string) *cobra.Command {
	var o hostOptions
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Check a remote host for what Satellite needs, and prepare its containerd",
		Long: `host doctor checks a remote host over SSH and prints a checklist with a fix for each
problem; host prepare writes the containerd and CNI settings Satellite needs.

Every flag can also be set with an environment variable: SATELLITE_ and the flag's name in
upper case with dashes as underscores (--ssh-key: SATELLITE_SSH_KEY).`,
		Args: cobra.NoArgs,
	}
	bindHostFlags(cmd.PersistentFlags(), &o)
	cmd.AddCommand(newDoctorCommand(getenv, &o), newPrepareCommand(getenv, &o))
	return cmd
}

func bindHostFlags(fs *pflag.FlagSet, o *hostOptions) {
	fs.StringVar(&o.ssh, "ssh", "", "the remote host, user@host:port (port 22 if omitted)")
	fs.StringVar(&o.sshKey, "ssh-key", "", "private key file for the SSH login; empty: ~/.ssh/id_ed25519, id_ecdsa or id_rsa, the first that exists")
	fs.StringVar(&o.knownHosts, "known-hosts", "", "OpenSSH known_hosts file holding the host's key (always verified); empty: ~/.ssh/known_hosts")
	fs.StringVar(&o.containerdConfig, "containerd-config", defaultContainerdConfig, "containerd's config file on the host")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
}

func bindDoctorFlags(fs *pflag.FlagSet, o *hostOptions) {
	fs.StringVar(&o.socket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's CRI socket on the host")
	fs.StringVar(&o.containerdRoot, "containerd-root", "/var/lib/containerd", "containerd's root directory on the host")
	fs.StringVar(&o.podLogDir, "pod-log-dir", "/var/log/pods", "directory on the host for pod logs")
	fs.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	fs.StringSliceVar(&o.clusterRanges, "cluster-ranges", nil, "the ranges Satellite routes into the host's tunnel (the cluster's Service ranges and its --cluster-cidrs), checked against the host's own networks")
}

func bindPrepareFlags(fs *pflag.FlagSet, o *hostOptions) {
	fs.StringVar(&o.cniConfDir, "cni-conf-dir", "", "CNI config directory on the host; empty: the conf_dir of containerd's config, else /etc/cni/net.d")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print what would change, as a diff, and change nothing")
	fs.BoolVar(&o.restart, "restart-containerd", false, "restart containerd (systemctl restart containerd) when its config changed")
	fs.BoolVar(&o.reloadSSHD, "reload-sshd", false, "reload sshd (systemctl reload ssh or sshd, else kill -HUP) when its config changed; open connections stay up")
}

func newDoctorCommand(getenv func(string) string, o *hostOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a remote host over SSH: a checklist with a fix for each failure; exits 1 if any check fails",
		Args:  cobra.NoArgs,
		RunE:  hostRunE(getenv, o, runDoctor),
	}
	bindDoctorFlags(cmd.Flags(), o)
	return cmd
}

func newPrepareCommand(getenv func(string) string, o *hostOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Write the containerd, CNI and sshd settings Satellite needs on a remote host (configs backed up first; idempotent)",
		Long: `prepare enables containerd's CRI plugin (removing it from disabled_plugins), sets
restrict_oom_score_adj where the host cannot lower oom_score_adj, points CNI at the directory
the distribution installs its plugins in, and writes a loopback-only CNI config when there is
none (Satellite's pods use the host's network). The config is backed up beside itself first
(config.toml.satellite-backup-<time>), and a second run finds nothing to change. containerd is
restarted only with --restart-containerd.

When sshd does not permit the SSH user Satellite's layer-3 tunnel (sshd -T), prepare adds
"Match User <user>" with "PermitTunnel point-to-point": in /etc/ssh/sshd_config.d/60-satellite-tunnel.conf
where sshd_config includes that directory, else at the end of sshd_config (backed up first).
It checks the result with sshd -t and sshd -T and undoes the change if either disagrees. sshd
is reloaded only with --reload-sshd; a reload ends no connection, and a running Satellite gets
its tunnel on its next one. The SSH user must be root or have passwordless sudo.`,
		Args: cobra.NoArgs,
		RunE: hostRunE(getenv, o, runPrepare),
	}
	bindPrepareFlags(cmd.Flags(), o)
	return cmd
}

// hostRunE completes o and runs run within o.timeout: the body of every host subcommand.
func hostRunE(getenv func(string) string, o *hostOptions, run func(context.Context, *hostOptions, io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := o.complete(cmd.Flags(), getenv); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
		defer cancel()
		return run(ctx, o, cmd.OutOrStdout())
	}
}

// complete applies the environment and fills in the SSH defaults from the home directory.
func (o *hostOptions) complete(fs *pflag.FlagSet, getenv func(string) string) error {
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if o.ssh == "" {
		return fmt.Errorf("--ssh is required")
	}
	home := getenv("HOME")
	if o.sshKey == "" {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if p := filepath.Join(home, ".ssh", name); home != "" && fileExists(p) {
				o.sshKey = p
				break
			}
		}
		if o.sshKey == "" {
			return fmt.Errorf("--ssh-key is required (no key in ~/.ssh)")
		}
	}
	if o.knownHosts == "" {
		if home == "" {
			return fmt.Errorf("--known-hosts is required")
		}
		o.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.output)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// sshHost builds the connection to the host the way the main command does: the key from a
// file, the host key verified against known_hosts, no fallback.
func sshHost(target, key, knownHosts string) (*remote.Host, string, error) {
	user, addr, err := parseSSHTarget(target)
	if err != nil {
		return nil, "", err
	}
	signer, err := remote.LoadSigner(key)
	if err != nil {
		return nil, "", err
	}
	h, err := remote.NewHost(remote.Config{Addr: addr, User: user, Signer: signer, KnownHosts: knownHosts})
	if err != nil {
		return nil, "", err
	}
	return h, user + "@" + addr, nil
}

func runDoctor(ctx context.Context, o *hostOptions, out io.Writer) error {
	h, target, err := sshHost(o.ssh, o.sshKey, o.knownHosts)
	if err != nil {
		return err
	}
	defer h.Close()
	rt, err := remote.NewRuntime(h, remote.RuntimeConfig{Socket: o.socket, CallTimeout: 15 * time.Second})
	if err != nil {
		return err
	}
	defer rt.Close()
	ranges, err := parsePrefixes(o.clusterRanges)
	if err != nil {
		return fmt.Errorf("--cluster-ranges: %w", err)
	}
	results := doctor.Run(ctx, h, rt, doctor.Options{
		ClusterRanges:    ranges,
		SSHTarget:        target,
		KnownHosts:       o.knownHosts,
		Socket:           o.socket,
		ContainerdRoot:   o.containerdRoot,
		PodLogDir:        o.podLogDir,
		ContainerdConfig: o.containerdConfig,
		PrepareCommand:   o.prepareCommand(target),
	})
	if err := writeResults(out, o.output, target, results); err != nil {
		return err
	}
	if n := doctor.Failed(results); n > 0 {
		return fmt.Errorf("host doctor: %d of %d checks failed on %s", n, len(results), target)
	}
	return nil
}

// prepareCommand is the `satellite host prepare` invocation for this host, for fixes.
func (o *hostOptions) prepareCommand(target string) string {
	args := []string{"satellite host prepare --ssh " + target}
	if o.containerdConfig != defaultContainerdConfig {
		args = append(args, "--containerd-config "+o.containerdConfig)
	}
	return strings.Join(args, " ")
}

func writeResults(w io.Writer, format, target string, results []doctor.Result) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Host   string          `json:"host"`
			OK     bool            `json:"ok"`
			Checks []doctor.Result `json:"checks"`
		}{target, doctor.Failed(results) == 0, results})
	}
	return doctor.WriteText(w, results)
}

func runPrepare(ctx context.Context, o *hostOptions, out io.Writer) error {
	h, _, err := sshHost(o.ssh, o.sshKey, o.knownHosts)
	if err != nil {
		return err
	}
	defer h.Close()
	return doctor.Prepare(ctx, h, doctor.PrepareOptions{
		ContainerdConfig:  o.containerdConfig,
		CNIConfDir:        o.cniConfDir,
		DryRun:            o.dryRun,
		RestartContainerd: o.restart,
		ReloadSSHD:        o.reloadSSHD,
	}, out)
}
