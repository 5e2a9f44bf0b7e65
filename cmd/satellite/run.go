package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/spf13/cobra"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	logslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/satellite-vk/satellite/internal/kubeletserver"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// kubernetesVersion is the Kubernetes release whose API Satellite is built against; the node
// reports it as its kubelet version, with Satellite's own version after it.
const kubernetesVersion = "v1.35.4"

func newCommand(getenv func(string) string) *cobra.Command {
	var c config
	var v flagValues
	cmd := &cobra.Command{
		Use:   "satellite",
		Short: "Run a Kubernetes node whose pods run on a remote host, through containerd over SSH",
		Long: `satellite registers one virtual-kubelet node and runs the pods scheduled to it on a remote
host with containerd, driven over one SSH connection (CRI v1 through the containerd socket).
kubectl logs, exec, attach and port-forward reach Satellite, which relays them over SSH.

Every flag can also be set with an environment variable: SATELLITE_ and the flag's name in
upper case with dashes as underscores (--ssh-key: SATELLITE_SSH_KEY).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), getenv); err != nil {
				return err
			}
			if err := c.complete(&v); err != nil {
				return err
			}
			return run(cmd.Context(), &c)
		},
	}
	bindFlags(cmd.Flags(), &c, &v)
	cmd.AddCommand(newDrainCommand(getenv))
	cmd.AddCommand(newHostCommand(getenv))
	cmd.AddCommand(newENICommand(getenv))
	cmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print Satellite's version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "satellite", version) },
	})
	return cmd
}

func newLogger(level, format string) (log.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return logslog.FromSlog(slog.New(h)), nil
}

// countingTransport counts requests to the Kubernetes API, for /debug/satellite.
type countingTransport struct {
	next  http.RoundTripper
	calls *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(r)
}

// run wires the SSH link, the CRI client, the provider and virtual-kubelet's node, and serves
// until ctx ends. Containers on the host keep running after it returns.
func run(ctx context.Context, c *config) error {
	ctx, resolveHost, err := startLogging(ctx, c)
	if err != nil {
		return err
	}
	d := &daemon{c: c, apiCalls: new(atomic.Int64)}
	defer d.close()
	if err := d.connect(ctx, resolveHost); err != nil {
		return err
	}
	if err := d.newProvider(ctx); err != nil {
		return err
	}
	if err := d.newNode(ctx); err != nil {
		return err
	}
	err = d.serve(ctx)
	if ctx.Err() != nil {
		log.G(ctx).Info("shutting down; containers on the host keep running")
		return nil
	}
	return err
}

// startLogging makes the logger the flags ask for and names the node (after its ENI, when
// the flags say so: resolveEC2, which also returns the host's address lookup), and returns
// ctx carrying the logger, with the node's name as a field.
func startLogging(ctx context.Context, c *config) (context.Context, func(context.Context) (string, error), error) {
	logger, err := newLogger(c.LogLevel, c.LogFormat)
	if err != nil {
		return nil, nil, err
	}
	resolveHost, err := c.resolveEC2(log.WithLogger(ctx, logger))
	if err != nil {
		return nil, nil, err
	}
	logger = logger.WithField("node", c.NodeName)
	log.L = logger
	return log.WithLogger(ctx, logger), resolveHost, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// tokenRequester is the TokenRequest API, for projected service account tokens.
type tokenRequester struct{ client kubernetes.Interface }

func (t tokenRequester) CreateToken(ctx context.Context, ns, sa string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	return t.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
}

// certConfig is the kubelet API's serving certificate, as the flags give it.
func (c *config) certConfig() kubeletserver.CertConfig {
	return kubeletserver.CertConfig{Mode: c.TLSMode, CertFile: c.TLSCert, KeyFile: c.TLSKey, NodeName: c.NodeName, NodeIP: c.NodeIP,
		Signer: c.CSRSigner, SelfApprove: c.CSRSelfApprove}
}
