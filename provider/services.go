package provider

import (
	"context"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/provider/internal/kubecontainer"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/network"
)

// SyncEndpointSlice relays from the node's address the ports a Service's EndpointSlice
// targets on this node's pods, as kube-proxy sends a Service's traffic to them there; nil (a
// slice deleted) relays none for key. Nothing is relayed when the pods keep the host's network.
func (p *Provider) SyncEndpointSlice(ctx context.Context, key string, slice *discoveryv1.EndpointSlice) {
	if p.relays == nil {
		return
	}
	var ports []network.Port
	if slice != nil {
		ports = network.SlicePorts(slice, p.cfg.NodeName)
	}
	if err := p.relays.Set(ctx, "endpointslice/"+key, ports); err != nil {
		log.G(ctx).WithError(err).WithField("endpointslice", key).Warn("cannot relay a port a Service targets on this node")
	}
}

// clusterDNS is the cluster's DNS for new sandboxes while the host's pods reach it, none
// otherwise (ClusterFirst then falls back to the host's resolv.conf, with MissingClusterDNS).
func (p *Provider) clusterDNS() kuberuntime.ClusterDNS {
	if p.link == nil || !p.link.Up() {
		return kuberuntime.ClusterDNS{}
	}
	return kuberuntime.ClusterDNS{Servers: p.cfg.Cluster.DNS, Domain: p.cfg.Cluster.Domain}
}

// networkConditions are the node's conditions of the cluster network (none without it).
func (p *Provider) networkConditions() []corev1.NodeCondition {
	if p.link == nil {
		return nil
	}
	return []corev1.NodeCondition{p.link.Condition()}
}

// clusterNetworkRepaired records on the node that the host's side of the tunnel was put back.
func (p *Provider) clusterNetworkRepaired(recorder record.EventRecorder) func(string) {
	return func(message string) {
		recorder.Event(kubecontainer.NodeRef(p.cfg.NodeName), corev1.EventTypeWarning, "TunnelRepaired", message)
	}
}

// clusterNetworkChanged records on the node why its pods lost or regained the cluster's
// network: a Warning with the reason (TunnelRefused, RangeOverlap, TunnelDown), or
// ClusterNetworkUp.
func (p *Provider) clusterNetworkChanged(recorder record.EventRecorder) func(bool, string, string) {
	return func(up bool, reason, message string) {
		ref := kubecontainer.NodeRef(p.cfg.NodeName)
		if up {
			recorder.Event(ref, corev1.EventTypeNormal, "ClusterNetworkUp", message)
			return
		}
		recorder.Event(ref, corev1.EventTypeWarning, reason, "Pods on the host have no cluster network: "+message)
	}
}
