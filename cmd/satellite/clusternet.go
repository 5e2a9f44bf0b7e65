package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// clusterNet is what pods on the host are given of the cluster's network: the ranges routed to
// Satellite through the tunnel, and the cluster's DNS.
type clusterNet struct {
	Ranges []netip.Prefix
	DNS    []string
	Domain string
}

// parsePrefixes parses CIDRs, masked.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR, like 10.0.0.0/16", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clusterNetwork finds the cluster's network: --cluster-cidrs and the Service ranges of the
// cluster's ServiceCIDR objects (the kubernetes one is the apiserver's
// --service-cluster-ip-range), and the DNS address of --cluster-dns or, by default, of the
// kube-system/kube-dns Service. A cluster without that Service has no cluster DNS (pods get
// MissingClusterDNS, as on a kubelet without clusterDNS).
func (c *config) clusterNetwork(ctx context.Context, client kubernetes.Interface) (clusterNet, error) {
	n := clusterNet{Domain: c.ClusterDomain}
	ranges, err := parsePrefixes(c.ClusterCIDRs)
	if err != nil {
		return n, fmt.Errorf("--cluster-cidrs: %w", err)
	}
	n.Ranges = ranges
	cidrs, err := client.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, sc := range cidrs.Items {
			for _, s := range sc.Spec.CIDRs {
				if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
					n.Ranges = append(n.Ranges, p.Masked())
				}
			}
		}
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		log.G(ctx).WithError(err).Warn("cannot read the cluster's ServiceCIDRs: only --cluster-cidrs are routed to the cluster")
	default:
		return n, fmt.Errorf("list the cluster's ServiceCIDRs: %w", err)
	}
	if n.DNS, err = c.clusterDNS(ctx, client); err != nil {
		return n, err
	}
	return n, nil
}

func (c *config) clusterDNS(ctx context.Context, client kubernetes.Interface) ([]string, error) {
	if len(c.ClusterDNS) > 0 {
		return c.ClusterDNS, nil
	}
	svc, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		log.G(ctx).Info("no kube-system/kube-dns Service: pods with dnsPolicy ClusterFirst get the host's DNS (MissingClusterDNS)")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the cluster's DNS (kube-system/kube-dns; or set --cluster-dns): %w", err)
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != "None" {
		return []string{ip}, nil
	}
	return nil, nil
}

// sshIP is the host's SSH address when it is an IP address (the zero Addr for a name).
func (c *config) sshIP() netip.Addr {
	host, _, err := net.SplitHostPort(c.SSHAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
