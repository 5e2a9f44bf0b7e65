package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/internal/kubeletserver"
	"github.com/satellite-vk/satellite/internal/vkadapter"
	"github.com/satellite-vk/satellite/provider"
	"github.com/satellite-vk/satellite/remote"
)

// daemon is what run wires, each part made from the ones before; close undoes them in reverse.
type daemon struct {
	c        *config
	apiCalls *atomic.Int64 // requests to the Kubernetes API, for /debug/satellite and /metrics
	clients  *apiClients
	recorder record.EventRecorder
	metrics  *ownMetrics
	host     *remote.Host
	rt       *remote.Runtime
	listers  *vkadapter.Listers
	p        *provider.Provider
	nodeSpec *corev1.Node
	n        *vkNode
	getCert  kubeletserver.GetCertificate
	approve  func(context.Context) error // nil: CSRs are not self-approved
	closers  []func()
}

func (d *daemon) defers(f func()) { d.closers = append(d.closers, f) }

func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// connect makes the API clients, the event recorder, the SSH link and the CRI client.
func (d *daemon) connect(ctx context.Context, resolveHost func(context.Context) (string, error)) error {
	c := d.c
	var err error
	if d.clients, err = newAPIClients(c.Kubeconfig, d.apiCalls); err != nil {
		return err
	}
	signer, err := remote.LoadSigner(c.SSHKey)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster()
	d.defers(broadcaster.Shutdown)
	broadcaster.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: d.clients.main.CoreV1().Events("")})
	d.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "satellite", Host: c.NodeName})

	hcfg := remote.Config{Addr: c.SSHAddr, User: c.SSHUser, Signer: signer, KnownHosts: c.KnownHosts}
	hcfg.Resolve = resolveHost // nil: the --ssh address as it is
	d.metrics = newOwnMetrics()
	hcfg.RoundTrip = d.metrics.observeRTT
	if c.TrustOnFirst {
		pin, err := newPinner(ctx, d.clients.main, c.PinnedSecret, c.NodeName, d.recorder)
		if err != nil {
			return err
		}
		d.defers(func() { pin.Close() })
		hcfg.ExtraKnownHosts, hcfg.TrustOnFirstUse = pin.File(), pin.Pin
	}
	if d.host, err = remote.NewHost(hcfg); err != nil {
		return err
	}
	d.defers(func() { d.host.Close() })
	if d.rt, err = remote.NewRuntime(d.host, remote.RuntimeConfig{Socket: c.Socket, ObserveCall: d.metrics.observeCRI}); err != nil {
		return err
	}
	d.defers(func() { d.rt.Close() })
	return nil
}

// newProvider makes the provider and the node it describes.
func (d *daemon) newProvider(ctx context.Context) error {
	c, client := d.c, d.clients.main
	pcfg := c.providerConfig(kubernetesVersion + "-satellite." + strings.TrimPrefix(version, "v"))
	pcfg.PodsSynced = func() bool {
		select {
		case <-d.n.Ready():
			return true
		default:
			return false
		}
	}
	if c.PodNetwork == "cluster" && c.Tunnel {
		n, err := c.clusterNetwork(ctx, client)
		if err != nil {
			return err
		}
		pcfg.Cluster = provider.ClusterNetwork{Ranges: n.Ranges, DNS: n.DNS, Domain: n.Domain, SSHAddr: c.sshIP()}
	}
	pcfg.Tokens = tokenRequester{client}
	pcfg.RuntimeClasses = client.NodeV1().RuntimeClasses()
	var err error
	if pcfg.Registries, err = c.registryCredentials(ctx); err != nil {
		return err
	}
	d.listers = new(vkadapter.Listers)
	d.p = provider.New(pcfg, provider.Deps{Host: d.host, Runtime: d.rt, Recorder: d.recorder,
		Pods: d.listers.Pods(), Objects: vkadapter.NewObjects(client, d.listers)})
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	d.nodeSpec = d.p.Node(startCtx)
	cancel()
	log.G(ctx).WithField("ready", nodeReady(d.nodeSpec)).WithField("ssh", c.SSHAddr).Info("registering node")
	return nil
}

// newNode makes virtual-kubelet's node and pod controllers around the provider, with the
// kubelet API behind its authentication and serving certificate.
func (d *daemon) newNode(ctx context.Context) error {
	c, client := d.c, d.clients.main
	auth, err := kubeletserver.NewAuth(d.clients.reviews, c.ClientCA)
	if err != nil {
		return err
	}
	if d.getCert, d.approve, err = kubeletserver.ServingCertificate(ctx, client, c.certConfig()); err != nil {
		return err
	}
	if d.n, err = newVKNode(c, vkadapter.NodeClient(client, d.clients.heartbeat, d.listers, d.p), *d.nodeSpec, d.p, d.p.NodeProvider(), d.syncSlices(ctx), d.recorder, d.listers); err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/runningpods/", d.p.RunningPods) // more specific than virtual-kubelet's "/"
	mux.Handle("/", d.n.podRoutes(d.p))
	d.n.handler = kubeletserver.WithAuth(auth, c.NodeName, d.p.Precheck(mux))
	d.n.tls = serverTLS(d.getCert)
	return nil
}

// serve runs the provider, the node and the optional servers until ctx ends or one fails.
func (d *daemon) serve(ctx context.Context) error {
	c, n, logger := d.c, d.n, log.G(ctx)
	g, gctx := errgroup.WithContext(ctx)
	if c.DebugAddress != "" {
		g.Go(func() error { return serveDebug(gctx, c.DebugAddress, d.host, d.rt, d.apiCalls) })
	}
	if c.HealthAddress != "" {
		extra := d.metrics.collectors(d.host, d.p)
		g.Go(func() error { return serveHealth(gctx, c.HealthAddress, n.Ready(), d.host, d.rt, d.apiCalls, extra...) })
	}
	if d.approve != nil {
		g.Go(func() error { return d.approve(gctx) })
	}
	g.Go(func() error { return d.p.Run(gctx) })
	g.Go(func() error {
		// Give a CSR a moment to be issued, so that the node does not turn Ready with a
		// kubelet API that cannot serve yet; a CSR awaiting a human does not hold it up.
		wctx, cancel := context.WithTimeout(gctx, 20*time.Second)
		kubeletserver.WaitForCertificate(wctx, d.getCert)
		cancel()
		return n.Run(gctx)
	})
	g.Go(func() error {
		select {
		case <-n.Ready():
			logger.WithField("tls", c.TLSMode).Info("node is registered")
			kubeletserver.WaitForCertificate(gctx, d.getCert)
			logger.Info("kubelet API is serving")
		case <-gctx.Done():
		}
		return nil
	})
	return g.Wait()
}
