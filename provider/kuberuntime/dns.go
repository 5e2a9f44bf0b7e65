package kuberuntime

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod's DNS is set up as the kubelet sets it up (pkg/kubelet/network/dns): the host's
// resolv.conf, or nothing under dnsPolicy None, merged with the pod's dnsConfig, cut to the
// resolver's limits, and handed to containerd as the sandbox's DNSConfig. containerd writes it
// to the sandbox's resolv.conf, which it bind-mounts into every container, for a sandbox in
// the host's network too (containerd 1.6 and 2.x, setupSandboxFiles), as it does for the
// kubelet's hostNetwork pods.
//
// With the cluster's DNS (ClusterDNS, when the host reaches it through Satellite's tunnel),
// ClusterFirst (for a pod that does not ask for the host's network) and ClusterFirstWithHostNet
// give the kubelet's resolv.conf for the cluster: its DNS servers alone, the search domains
// <namespace>.svc.<domain>, svc.<domain> and <domain> before the host's, and ndots:5. Without
// it Satellite is a kubelet without clusterDNS: those policies fall back to the host's
// resolv.conf with the kubelet's MissingClusterDNS warning.

const (
	// The resolver's limits the kubelet enforces (pkg/apis/core/validation: MaxDNSNameservers,
	// MaxDNSSearchPathsExpanded, MaxDNSSearchListCharsExpanded; DNS1123SubdomainMaxLength).
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
	maxDNSSearchLength    = 253
)

// ClusterDNS is the cluster's DNS as the kubelet's clusterDNS and clusterDomain give it; no
// Servers: none (a kubelet without clusterDNS).
type ClusterDNS struct {
	Servers []string
	Domain  string
}

// DNSWarning is an event the kubelet records while forming a pod's DNS configuration.
type DNSWarning struct {
	Reason, Message string
	NodeMessage     string // recorded on the node as well, when set
}

// PodDNSConfig is the pod's DNS configuration given the host's, with the warnings the kubelet
// would record (GetPodDNS).
func PodDNSConfig(pod *corev1.Pod, host *runtimeapi.DNSConfig, cluster ClusterDNS) (*runtimeapi.DNSConfig, []DNSWarning) {
	var warnings []DNSWarning
	cfg := &runtimeapi.DNSConfig{
		Servers:  append([]string(nil), host.Servers...),
		Searches: append([]string(nil), host.Searches...),
		Options:  append([]string(nil), host.Options...),
	}
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	case corev1.DNSDefault:
	case corev1.DNSClusterFirst:
		if pod.Spec.HostNetwork {
			break // the kubelet gives a hostNetwork pod the host's resolv.conf under ClusterFirst
		}
		fallthrough
	default: // ClusterFirstWithHostNet, and what the API server would have refused
		if len(cluster.Servers) > 0 {
			cfg.Servers = append([]string(nil), cluster.Servers...)
			cfg.Searches = clusterSearches(cluster.Domain, pod.Namespace, cfg.Searches)
			cfg.Options = []string{"ndots:5"}
			break
		}
		msg := fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.", corev1.DNSClusterFirst, corev1.DNSDefault)
		warnings = append(warnings, DNSWarning{Reason: "MissingClusterDNS", NodeMessage: msg,
			Message: fmt.Sprintf("pod: %q. %s", formatPod(pod), msg)})
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.Servers = omitDuplicates(append(cfg.Servers, dc.Nameservers...))
		cfg.Searches = omitDuplicates(append(cfg.Searches, dc.Searches...))
		cfg.Options = mergeDNSOptions(cfg.Options, dc.Options)
	}
	if len(cfg.Servers) > maxDNSNameservers {
		cfg.Servers = cfg.Servers[:maxDNSNameservers]
		warnings = append(warnings, DNSWarning{Reason: "DNSConfigForming",
			Message: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(cfg.Servers, " ")})
	}
	var cut bool
	if cfg.Searches, cut = fitSearches(cfg.Searches); cut {
		warnings = append(warnings, DNSWarning{Reason: "DNSConfigForming",
			Message: "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(cfg.Searches, " ")})
	}
	return cfg, warnings
}

// fitSearches applies the kubelet's limits on search domains (formDNSSearchFitsLimits): at
// most 32 of them, none longer than 253 characters (glibc aborts on those), and a search line
// of at most 2048 characters, cut from the end.
func fitSearches(searches []string) ([]string, bool) {
	cut := false
	if len(searches) > maxDNSSearchPaths {
		searches, cut = searches[:maxDNSSearchPaths], true
	}
	kept := searches[:0:0]
	for _, s := range searches {
		if len(s) > maxDNSSearchLength {
			cut = true
			continue
		}
		kept = append(kept, s)
	}
	line := len(strings.Join(kept, " "))
	for line > maxDNSSearchListChars {
		line -= len(kept[len(kept)-1]) + 1
		kept, cut = kept[:len(kept)-1], true
	}
	return kept, cut
}

func omitDuplicates(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mergeDNSOptions merges the pod's options into the base ones, the pod's winning for the same
// name. The kubelet goes through a map, so its order varies; this keeps the order of first
// appearance.
func mergeDNSOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	var names []string
	values := map[string]string{}
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = value
	}
	for _, op := range base {
		name, value, _ := strings.Cut(op, ":")
		set(name, value)
	}
	for _, op := range pod {
		value := ""
		if op.Value != nil {
			value = *op.Value
		}
		set(op.Name, value)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if values[n] != "" {
			n += ":" + values[n]
		}
		out = append(out, n)
	}
	return out
}

// ParseResolvConf reads nameservers, search domains and options as the kubelet does:
// nameservers accumulate, the last search and options lines win, a search domain's trailing
// dot is dropped, comments are skipped.
func ParseResolvConf(data []byte) *runtimeapi.DNSConfig {
	cfg := &runtimeapi.DNSConfig{Servers: []string{}, Searches: []string{}, Options: []string{}}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) >= 2 {
				cfg.Servers = append(cfg.Servers, f[1])
			}
		case "search":
			cfg.Searches = []string{}
			for _, s := range f[1:] {
				cfg.Searches = append(cfg.Searches, strings.TrimSuffix(s, "."))
			}
		case "options":
			cfg.Options = f[1:]
		}
	}
	return cfg
}

// clusterSearches puts the cluster's search domains before the host's, as the kubelet does
// (generateSearchesForDNSClusterFirst).
func clusterSearches(domain, namespace string, host []string) []string {
	if domain == "" {
		return host
	}
	return omitDuplicates(append([]string{namespace + ".svc." + domain, "svc." + domain, domain}, host...))
}
