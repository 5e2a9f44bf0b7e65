package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// heartbeatTimeout bounds one node status or lease call: the kubelet's heartbeat client
// timeout, its node status update frequency (10 s) under the lease duration (40 s).
const heartbeatTimeout = 10 * time.Second

// apiClients are Satellite's clients of the apiserver. As in the kubelet
// (cmd/kubelet/app/server.go, heartbeatClient), the node's status and lease have a client of
// their own, without client-side rate limit, so that nothing else Satellite does, and no
// caller of its kubelet API, can hold the heartbeat up; the kubelet API's reviews have
// theirs, limited by their gates.
type apiClients struct {
	main      kubernetes.Interface // everything else, 50 QPS with bursts of 100
	heartbeat kubernetes.Interface
	reviews   reviewClients
}

// restConfig is the kubeconfig's client configuration (in-cluster if empty), with every
// request counted in calls.
func restConfig(kubeconfig string, calls *atomic.Int64) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.UserAgent = "satellite/" + version
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, calls: calls} })
	return cfg, nil
}

func kubeClient(kubeconfig string, calls *atomic.Int64) (kubernetes.Interface, error) {
	cfg, err := restConfig(kubeconfig, calls)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func newAPIClients(kubeconfig string, calls *atomic.Int64) (*apiClients, error) {
	cfg, err := restConfig(kubeconfig, calls)
	if err != nil {
		return nil, err
	}
	c := new(apiClients)
	if c.main, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	hb := rest.CopyConfig(cfg)
	hb.QPS, hb.Timeout = -1, heartbeatTimeout // -1: no rate limiter
	if c.heartbeat, err = kubernetes.NewForConfig(hb); err != nil {
		return nil, err
	}
	c.reviews, err = newReviewClients(cfg,
		newGate(reviewQPS, reviewBurst, reviewSlots, reviewQueue, reviewWait),
		newGate(reviewQPS, reviewBurst, reviewSlots, reviewQueue, reviewWait))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// newReviewClients are cfg's clients for TokenReview, behind tokens (under the token cache),
// and for SubjectAccessReview, behind sars (in its transport). The gates do the rate
// limiting, with bounded waits: client-go's limiter would queue without bound.
func newReviewClients(cfg *rest.Config, tokens, sars *gate) (reviewClients, error) {
	r := reviewClients{tokens: tokens}
	authn := rest.CopyConfig(cfg)
	authn.QPS = -1
	var err error
	if r.authn, err = authenticationv1client.NewForConfig(authn); err != nil {
		return r, err
	}
	authz := rest.CopyConfig(cfg)
	authz.QPS = -1
	authz.Wrap(func(rt http.RoundTripper) http.RoundTripper { return gatedTransport{next: rt, gate: sars} })
	r.authz, err = authorizationv1client.NewForConfig(authz)
	return r, err
}

// withHeartbeat is a client whose nodes and leases are another's: virtual-kubelet's node
// controller takes both from the one client it builds the node with.
type withHeartbeat struct {
	kubernetes.Interface
	heartbeat kubernetes.Interface
}

func (c withHeartbeat) CoreV1() corev1client.CoreV1Interface {
	return heartbeatCoreV1{CoreV1Interface: c.Interface.CoreV1(), heartbeat: c.heartbeat.CoreV1()}
}

func (c withHeartbeat) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return c.heartbeat.CoordinationV1()
}

type heartbeatCoreV1 struct {
	corev1client.CoreV1Interface
	heartbeat corev1client.CoreV1Interface
}

func (c heartbeatCoreV1) Nodes() corev1client.NodeInterface { return c.heartbeat.Nodes() }
