// Package status computes a pod's status from what the host's containerd reports: the
// container statuses, the phase and the conditions, the kubelet's way
// (pkg/kubelet/kubelet_pods.go generateAPIPodStatus and getPhase, pkg/kubelet/status's
// generate.go). Everything here is a pure function of its inputs, tested table-driven; the pod
// worker gathers the inputs (the CRI observation, the waiting reasons it keeps, what the
// prober says of running containers) and publishes the result.
package status
