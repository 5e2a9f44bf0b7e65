package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/satellite-vk/satellite/internal/kubeletserver"
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
	reviews   kubeletserver.ReviewClients
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
	if c.reviews, err = kubeletserver.NewReviewClients(cfg); err != nil {
		return nil, err
	}
	return c, nil
}
