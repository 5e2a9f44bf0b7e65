// Package stats reads the node's resource usage when the kubelet API is asked for it: the
// summary of /stats/summary and the resource metrics of /metrics/resource, which
// metrics-server scrapes.
//
// It mirrors the kubelet's pkg/kubelet/stats (the CRI stats provider) and
// pkg/kubelet/metrics/collectors/resource_metrics.go. The node's figures come from the host's
// /proc and df (what cAdvisor reads of the root cgroup), the pods' from containerd's CRI
// stats; CPU rates take two readings, kept between scrapes. The provider builds one Collector
// with New, from the small Host and Runtime interfaces and a HostDown function that the node
// status answers, so the package knows nothing of Provider.
package stats
