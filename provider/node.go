package provider

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/satellite-vk/satellite/provider/nodestatus"
)

// ErrHostUnreachable is returned at once for requests that need the host while the last
// node status check found its SSH link down (nodestatus.ErrHostUnreachable).
var ErrHostUnreachable = nodestatus.ErrHostUnreachable

// hostDown returns why the host is unreachable, or nil.
func (p *Provider) hostDown() error { return p.node.HostDown() }

// NodeProvider is the provider's half that virtual-kubelet's node controller talks to.
func (p *Provider) NodeProvider() interface {
	Ping(context.Context) error
	NotifyNodeStatus(context.Context, func(*corev1.Node))
} {
	return p.node
}

// Node reads the host and returns the node object to register. When the host cannot be read
// the node is registered NotReady, with the reason, and corrected once it can.
func (p *Provider) Node(ctx context.Context) *corev1.Node { return p.node.Node(ctx) }
