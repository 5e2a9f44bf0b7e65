package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/internal/vkadapter"
	"github.com/satellite-vk/satellite/provider"
)

// informerResync is how often the node's informers replay their objects to the pod
// controller: virtual-kubelet's nodeutil default.
const informerResync = time.Minute

// vkNode is virtual-kubelet's node and pod controllers, the informers they read and the
// kubelet API's server: what virtual-kubelet's nodeutil.NewNode builds, built here because
// nodeutil's authentication brings k8s.io/apiserver's server options (etcd's client,
// OpenTelemetry, admission) into the binary: 273 packages, 4.4 MiB of RSS (docs/performance.md).
type vkNode struct {
	nc                         *node.NodeController
	pc                         *node.PodController
	podInformers, scmInformers informers.SharedInformerFactory
	workers                    int
	listen                     string
	handler                    http.Handler // nil until set: the routes need the node's pod lister
	tls                        *tls.Config
	ready                      chan struct{}
}

// newVKNode makes the controllers for spec (copied) around pods and np, with client's
// informers: the pods bound to the node, and the Secrets, ConfigMaps and Services of the
// cluster; l gets their listers.
func newVKNode(c *config, client kubernetes.Interface, spec corev1.Node, pods node.PodLifecycleHandler, np node.NodeProvider, slices sliceSyncer, recorder record.EventRecorder, l *vkadapter.Listers) (*vkNode, error) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return nil, fmt.Errorf("kubelet API listen address: %w", err)
	}
	n := &vkNode{workers: c.Workers, listen: c.Listen, ready: make(chan struct{})}
	n.podInformers = informers.NewSharedInformerFactoryWithOptions(client, informerResync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", c.NodeName).String()
		}))
	n.scmInformers = informers.NewSharedInformerFactoryWithOptions(client, informerResync)
	podInformer := n.podInformers.Core().V1().Pods()
	core := n.scmInformers.Core().V1()
	l.Set(podInformer.Lister(), core.Services().Lister())
	if c.PodNetwork == "cluster" {
		if _, err := n.scmInformers.Discovery().V1().EndpointSlices().Informer().AddEventHandler(sliceHandler(slices)); err != nil {
			return nil, fmt.Errorf("endpointslice informer: %w", err)
		}
	}
	var err error
	n.nc, err = node.NewNodeController(np, &spec, client.CoreV1().Nodes(),
		node.WithNodeEnableLeaseV1(client.CoordinationV1().Leases(corev1.NamespaceNodeLease), node.DefaultLeaseDuration))
	if err != nil {
		return nil, fmt.Errorf("node controller: %w", err)
	}
	n.pc, err = node.NewPodController(node.PodControllerConfig{
		PodClient:         client.CoreV1(),
		EventRecorder:     vkadapter.PodControllerEvents(recorder),
		Provider:          pods,
		PodInformer:       podInformer,
		SecretInformer:    core.Secrets(),
		ConfigMapInformer: core.ConfigMaps(),
		ServiceInformer:   core.Services(),
		// Satellite resolves env itself when it creates a container, as the kubelet does:
		// virtual-kubelet's resolution cannot do status.podIP, status.hostIP or
		// resourceFieldRef, and holds back the whole pod when it fails.
		SkipDownwardAPIResolution: true,
	})
	if err != nil {
		return nil, fmt.Errorf("pod controller: %w", err)
	}
	return n, nil
}

// podRoutes are virtual-kubelet's kubelet API routes (logs, exec, attach, port-forward, pods,
// stats, metrics) for p, as nodeutil.AttachProviderRoutes mounts them.
func (n *vkNode) podRoutes(p *provider.Provider) http.Handler {
	pods := n.podInformers.Core().V1().Pods().Lister()
	return api.PodHandler(api.PodHandlerConfig{
		RunInContainer:    p.RunInContainer,
		AttachToContainer: p.AttachToContainer,
		GetContainerLogs:  p.GetContainerLogs,
		GetPods:           p.GetPods,
		GetPodsFromKubernetes: func(context.Context) ([]*corev1.Pod, error) {
			return pods.List(labels.Everything())
		},
		GetStatsSummary:       p.GetStatsSummary,
		GetMetricsResource:    p.GetMetricsResource,
		StreamIdleTimeout:     4 * time.Hour, // the kubelet's streamingConnectionIdleTimeout
		StreamCreationTimeout: 30 * time.Second,
		PortForward:           p.PortForward,
	}, true)
}

// serverTLS is nodeutil.WithTLSConfig's configuration: client certificates asked for, not
// required (tokens are also accepted), and its cipher suites for TLS 1.2.
func serverTLS(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:               tls.VersionTLS12,
		PreferServerCipherSuites: true,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		},
		ClientAuth:     tls.RequestClientCert,
		GetCertificate: getCert,
	}
}

// Ready is closed once the pod controller has synced and the node is registered.
func (n *vkNode) Ready() <-chan struct{} { return n.ready }

// Run serves the kubelet API, starts the informers and the pod controller, then, once that is
// ready, the node controller, as nodeutil's Node.Run does; it returns when either controller
// stops or ctx ends, after both have.
func (n *vkNode) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopHTTP, err := n.serveHTTP(ctx)
	if err != nil {
		return err
	}
	defer stopHTTP()
	go n.podInformers.Start(ctx.Done())
	go n.scmInformers.Start(ctx.Done())
	go n.pc.Run(ctx, n.workers) //nolint:errcheck // its error is pc.Err
	defer func() { cancel(); <-n.pc.Done() }()
	select {
	case <-ctx.Done():
		return nil
	case <-n.pc.Ready():
	case <-n.pc.Done():
		return n.pc.Err()
	}
	log.G(ctx).Debug("pod controller ready")
	go n.nc.Run(ctx) //nolint:errcheck // its error is nc.Err
	defer func() { cancel(); <-n.nc.Done() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-n.nc.Ready():
	case <-n.nc.Done():
		return n.nc.Err()
	}
	log.G(ctx).Debug("node controller ready")
	close(n.ready)
	select {
	case <-n.nc.Done():
		return n.nc.Err()
	case <-n.pc.Done():
		return n.pc.Err()
	}
}

// serveHTTP listens with TLS and serves the handler until the returned function is called.
func (n *vkNode) serveHTTP(ctx context.Context) (stop func(), err error) {
	l, err := tls.Listen("tcp", n.listen, n.tls)
	if err != nil {
		return nil, fmt.Errorf("kubelet API listener: %w", err)
	}
	srv := &http.Server{Handler: n.handler, TLSConfig: n.tls, ReadHeaderTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l) //nolint:errcheck // ErrServerClosed once stopped
	}()
	log.G(ctx).Debug("kubelet API serving")
	return func() { srv.Close(); l.Close(); <-done }, nil
}
