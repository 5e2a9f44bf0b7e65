// Package kubecontainer holds the small pieces of the kubelet's container vocabulary
// (pkg/kubelet/container) that several of Satellite's provider packages share: which
// containers are sidecars, the object reference a container's events are recorded against,
// and the $(VAR) expansion of commands, arguments and subPathExpr. It does no I/O and knows
// nothing of CRI; the prober, the pod worker, the status and the CRI translation import it.
package kubecontainer
