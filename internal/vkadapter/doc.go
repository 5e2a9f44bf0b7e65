// Package vkadapter adapts client-go to what virtual-kubelet's node and pod controllers and Satellite's
// provider expect of the API, the way the kubelet's own managers would: Secrets and
// ConfigMaps read one at a time and cached briefly (the kubelet's "Cache" strategy, Objects)
// instead of cluster-wide informers, which the pod controller wants and are made inert; the
// pod lister the provider takes before the node's informers are made (Listers); pod statuses written as the
// kubelet's status manager writes them, as strategic merge patches (statuspatch.go); nodes and
// leases through a heartbeat client of their own; and the pod controller's events trimmed to
// what a kubelet records (PodControllerEvents).
//
// cmd/satellite builds the node with NodeClient and hands the provider Listers.Pods and
// Objects; nothing here knows of the remote host.
package vkadapter
