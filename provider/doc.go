// Package provider is Satellite's virtual-kubelet provider: it turns the pods bound to a
// Satellite node into CRI sandboxes and containers on the remote host (through package
// remote), turns CRI state back into pod status, and keeps the node's status true to the
// host.
//
// Provider is the facade virtual-kubelet calls, and the wiring: CreatePod, UpdatePod and
// DeletePod only record the wish and wake the pod's worker (package podworker), which
// reconciles the pod with the host, kubelet-style. Each probe of a running container has a
// goroutine of its own (package prober), which the pod's worker starts and stops with that
// container instance and whose results wake the pod's worker. Nothing is remembered only in
// memory that cannot be read back from the host: sandboxes and containers carry the pod's
// identity in CRI labels (the kubelet's io.kubernetes.* keys), so a restarted Satellite adopts
// what runs.
//
// The pure translations (provider/kuberuntime, provider/status, provider/gpu's parsers)
// do no I/O and are tested table-driven.
package provider
