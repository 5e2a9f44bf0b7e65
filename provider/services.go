package provider

import (
	"context"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	discoveryv1 "k8s.io/api/discovery/v1"

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
