// Package prober runs the liveness, readiness and startup probes of a pod's running
// containers and keeps their results: the kubelet's pkg/kubelet/prober (the manager, one
// worker per probe of each container instance, the results) with the probe actions of
// pkg/probe (exec, httpGet, tcpSocket, grpc).
//
// Satellite's pods live in the remote host's network, so every connection a probe opens is
// dialled from the host, and exec probes are CRI ExecSync calls. The pod worker calls Sync
// with what the host reports, reads Health and KillReason, and calls Forget when the pod is
// gone; a result that changes wakes the pod's worker through the notify function. The HTTP
// request and client are the kubelet's, shared with the lifecycle hooks (NewHTTPGetRequest,
// NewHTTPClient).
package prober
