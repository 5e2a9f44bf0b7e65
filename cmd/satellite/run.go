package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	logslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"golang.org/x/sync/errgroup"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/internal/kubeletserver"
	"github.com/satellite-vk/satellite/internal/vkadapter"
	"github.com/satellite-vk/satellite/provider"
	"github.com/satellite-vk/satellite/remote"
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
	logger, err := newLogger(c.LogLevel, c.LogFormat)
	if err != nil {
		return err
	}
	resolveHost, err := c.resolveEC2(log.WithLogger(ctx, logger)) // names the node after its ENI
	if err != nil {
		return err
	}
	logger = logger.WithField("node", c.NodeName)
	ctx = log.WithLogger(ctx, logger)
	log.L = logger

	apiCalls := new(atomic.Int64)
	clients, err := newAPIClients(c.Kubeconfig, apiCalls)
	if err != nil {
		return err
	}
	client := clients.main
	signer, err := remote.LoadSigner(c.SSHKey)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster()
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "satellite", Host: c.NodeName})

	hcfg := remote.Config{Addr: c.SSHAddr, User: c.SSHUser, Signer: signer, KnownHosts: c.KnownHosts}
	hcfg.Resolve = resolveHost // nil: the --ssh address as it is
	metrics := newOwnMetrics()
	hcfg.RoundTrip = metrics.observeRTT
	if c.TrustOnFirst {
		pin, err := newPinner(ctx, client, c.PinnedSecret, c.NodeName, recorder)
		if err != nil {
			return err
		}
		defer pin.Close()
		hcfg.ExtraKnownHosts, hcfg.TrustOnFirstUse = pin.File(), pin.Pin
	}
	host, err := remote.NewHost(hcfg)
	if err != nil {
		return err
	}
	defer host.Close()
	rt, err := remote.NewRuntime(host, remote.RuntimeConfig{Socket: c.Socket, ObserveCall: metrics.observeCRI})
	if err != nil {
		return err
	}
	defer rt.Close()

	pcfg := c.providerConfig(kubernetesVersion + "-satellite." + strings.TrimPrefix(version, "v"))
	var n *nodeutil.Node
	pcfg.PodsSynced = func() bool {
		select {
		case <-n.Ready():
			return true
		default:
			return false
		}
	}
	pcfg.Tokens = tokenRequester{client}
	pcfg.RuntimeClasses = client.NodeV1().RuntimeClasses()
	if pcfg.Registries, err = c.registryCredentials(ctx); err != nil {
		return err
	}
	listers := new(vkadapter.Listers)
	p := provider.New(pcfg, provider.Deps{Host: host, Runtime: rt, Recorder: recorder,
		Pods: listers.Pods(), Objects: vkadapter.NewObjects(client, listers)})
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	nodeSpec := p.Node(startCtx)
	cancel()
	logger.WithField("ready", nodeReady(nodeSpec)).WithField("ssh", c.SSHAddr).Info("registering node")

	auth, err := kubeletserver.NewAuth(clients.reviews, c.ClientCA, c.NodeName)
	if err != nil {
		return err
	}
	getCert, approveCSRs, err := kubeletserver.ServingCertificate(ctx, client, c.certConfig())
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/runningpods/", p.RunningPods) // more specific than virtual-kubelet's "/"
	n, err = nodeutil.NewNode(c.NodeName,
		func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
			listers.Set(pc)
			return p, p.NodeProvider(), nil
		},
		func(nc *nodeutil.NodeConfig) error {
			nc.Client = vkadapter.NodeClient(client, clients.heartbeat, listers)
			nc.NodeSpec = *nodeSpec
			nc.HTTPListenAddr = c.Listen
			nc.NumWorkers = c.Workers
			nc.EventRecorder = vkadapter.PodControllerEvents(recorder)
			nc.StreamIdleTimeout = 4 * time.Hour // the kubelet's streamingConnectionIdleTimeout
			nc.StreamCreationTimeout = 30 * time.Second
			// Satellite resolves env itself when it creates a container, as the kubelet does:
			// virtual-kubelet's resolution cannot do status.podIP, status.hostIP or
			// resourceFieldRef, and holds back the whole pod when it fails.
			nc.SkipDownwardAPIResolution = true
			nc.Handler = kubeletserver.WithAuth(auth, c.NodeName, p.Precheck(mux))
			return nil
		},
		nodeutil.AttachProviderRoutes(mux),
		nodeutil.WithTLSConfig(func(t *tls.Config) error {
			t.MinVersion = tls.VersionTLS12
			t.GetCertificate = getCert
			return nil
		}),
	)
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	if c.DebugAddress != "" {
		g.Go(func() error { return serveDebug(gctx, c.DebugAddress, host, rt, apiCalls) })
	}
	if c.HealthAddress != "" {
		extra := metrics.collectors(host, p)
		g.Go(func() error { return serveHealth(gctx, c.HealthAddress, n.Ready(), host, rt, apiCalls, extra...) })
	}
	if approveCSRs != nil {
		g.Go(func() error { return approveCSRs(gctx) })
	}
	g.Go(func() error { return p.Run(gctx) })
	g.Go(func() error {
		// Give a CSR a moment to be issued, so that the node does not turn Ready with a
		// kubelet API that cannot serve yet; a CSR awaiting a human does not hold it up.
		wctx, cancel := context.WithTimeout(gctx, 20*time.Second)
		kubeletserver.WaitForCertificate(wctx, getCert)
		cancel()
		return n.Run(gctx)
	})
	g.Go(func() error {
		select {
		case <-n.Ready():
			logger.WithField("tls", c.TLSMode).Info("node is registered")
			kubeletserver.WaitForCertificate(gctx, getCert)
			logger.Info("kubelet API is serving")
		case <-gctx.Done():
		}
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil {
		logger.Info("shutting down; containers on the host keep running")
		return nil
	}
	return err
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
