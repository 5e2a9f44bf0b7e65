package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// listenPort splits --listen-address.
func listenPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("--listen-address %q: %w", addr, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("--listen-address %q: bad port", addr)
	}
	return host, int32(n), nil
}

// parseSSHTarget splits user@host[:port].
func parseSSHTarget(t string) (user, addr string, err error) {
	user, hostport, ok := strings.Cut(t, "@")
	if !ok || user == "" || hostport == "" {
		return "", "", fmt.Errorf("--ssh %q: want user@host[:port]", t)
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), "22")
	}
	host, _, _ := net.SplitHostPort(hostport)
	if host == "" {
		return "", "", fmt.Errorf("--ssh %q: no host", t)
	}
	return user, hostport, nil
}

// parseLabels are the default labels with --node-labels over them.
func parseLabels(extra []string) (map[string]string, error) {
	labels := map[string]string{}
	for k, v := range defaultLabels {
		labels[k] = v
	}
	for _, kv := range extra {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--node-labels: %q is not key=value", kv)
		}
		labels[k] = v
	}
	return labels, nil
}

// parseTaints reads --node-taints.
func parseTaints(specs []string) ([]corev1.Taint, error) {
	var taints []corev1.Taint
	for _, s := range specs {
		kv, effect, ok := strings.Cut(s, ":")
		k, v, _ := strings.Cut(kv, "=")
		e := corev1.TaintEffect(effect)
		if !ok || k == "" || (e != corev1.TaintEffectNoSchedule && e != corev1.TaintEffectPreferNoSchedule && e != corev1.TaintEffectNoExecute) {
			return nil, fmt.Errorf("--node-taints: %q is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute", s)
		}
		taints = append(taints, corev1.Taint{Key: k, Value: v, Effect: e})
	}
	return taints, nil
}

// reservable are the resources --system-reserved and --kube-reserved take.
var reservable = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

// parseReserved adds up --system-reserved and --kube-reserved.
func parseReserved(system, kube []string) (corev1.ResourceList, error) {
	sum := corev1.ResourceList{}
	for _, f := range []struct {
		flag string
		kvs  []string
	}{{"--system-reserved", system}, {"--kube-reserved", kube}} {
		flag := f.flag
		for _, kv := range f.kvs {
			k, v, ok := strings.Cut(kv, "=")
			name := corev1.ResourceName(strings.TrimSpace(k))
			if !ok || !slices.Contains(reservable, name) {
				return nil, fmt.Errorf("%s: %q: want cpu=, memory= or ephemeral-storage=<quantity>", flag, kv)
			}
			q, err := resource.ParseQuantity(strings.TrimSpace(v))
			if err != nil || q.Sign() < 0 {
				return nil, fmt.Errorf("%s: %q: %s is not a quantity like 500m or 1Gi", flag, kv, v)
			}
			total := sum[name]
			total.Add(q)
			sum[name] = total
		}
	}
	if len(sum) == 0 {
		return nil, nil
	}
	return sum, nil
}
