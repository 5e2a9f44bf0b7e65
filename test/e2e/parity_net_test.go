package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// sortOptions sorts the words of resolv.conf's options line: the kubelet merges options
// through a map, so their order varies from pod to pod even on the kubelet.
func sortOptions(resolv string) string {
	lines := strings.Split(resolv, "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "options" {
			sort.Strings(f[1:])
			lines[i] = strings.Join(f, " ")
		}
	}
	return strings.Join(lines, "\n")
}

// runToLogs runs the pod to completion and returns its log.
func (e *env) runToLogs(t *testing.T, ns string, pod *corev1.Pod) string {
	t.Helper()
	e.waitPod(t, ns, pod.Name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	return e.mustKubectl(t, "", "-n", ns, "logs", pod.Name)
}

// /etc/hosts and /etc/resolv.conf under each DNS policy, with hostAliases and a dnsConfig:
// the hosts file is the kubelet's for a hostNetwork pod (the host's own with the aliases
// appended), resolv.conf the kubelet's: the host's merged with dnsConfig, or under
// ClusterFirstWithHostNet, and ClusterFirst for a pod not asking for the host's network, the
// cluster's DNS (the reference kubelet's clusterDNS is CoreDNS's kube-dns Service, which the
// host's pods reach through Satellite's tunnel). The Satellite of the containerd 1.6 node
// routes no tunnel (both Satellites drive one host here): it is a kubelet without clusterDNS,
// falling back to the host's resolv.conf with a MissingClusterDNS warning. A pod not asking
// for the host's network still runs in it on Satellite: its /etc/hosts is checked on the
// Satellite nodes alone.
func TestIntegrationParityHostsAndDNS(t *testing.T) {
	e := loadEnv(t)
	// obs holds what every node must see alike; withDNS what the nodes with the cluster's DNS
	// must (the kubelet's and the containerd 2.x node's).
	var obs, withDNS observations
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		clusterDNS := tg.name != "containerd1.6"
		dnsConfig := &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53"}, Searches: []string{"parity.example", "svc.parity.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("3")}, {Name: "edns0"}, {Name: "timeout", Value: ptr.To("2")}}}
		cases := map[string]corev1.DNSPolicy{"dns-default": corev1.DNSDefault, "dns-clusterfirst": corev1.DNSClusterFirst,
			"dns-withhostnet": corev1.DNSClusterFirstWithHostNet, "dns-none": corev1.DNSNone}
		pods := map[string]*corev1.Pod{}
		for name, policy := range cases {
			pod := tg.pod(name, corev1.RestartPolicyNever, "cat /etc/hosts; echo ---; cat /etc/resolv.conf")
			pod.Spec.DNSPolicy, pod.Spec.DNSConfig = policy, dnsConfig
			pod.Spec.HostAliases = []corev1.HostAlias{{IP: "10.11.12.13", Hostnames: []string{"alias-one.parity", "alias-two.parity"}},
				{IP: "fd00::13", Hostnames: []string{"alias-six.parity"}}}
			pods[name] = e.createPod(t, ns, pod)
		}
		for name, pod := range pods {
			out := sortOptions(strings.ReplaceAll(e.runToLogs(t, ns, pod), ns, "<ns>"))
			switch {
			case name != "dns-withhostnet":
				obs.add(tg.name, name, out)
			case clusterDNS:
				withDNS.add(tg.name, name, out)
			}
			hosts, resolv, _ := strings.Cut(out, "---\n")
			if name == "dns-none" && resolv != "search parity.example svc.parity.example\nnameserver 192.0.2.53\noptions edns0 ndots:3 timeout:2\n" {
				t.Errorf("%s: dnsPolicy None: resolv.conf is not the dnsConfig alone:\n%s", tg.name, resolv)
			}
			if !strings.HasPrefix(hosts, "# Kubernetes-managed hosts file (host network).\n") ||
				!strings.HasSuffix(hosts, "\n# Entries added by HostAliases.\n10.11.12.13\talias-one.parity\talias-two.parity\nfd00::13\talias-six.parity\n") {
				t.Errorf("%s: %s: /etc/hosts:\n%s", tg.name, name, hosts)
			}
			for _, want := range []string{"parity.example svc.parity.example\n", "ndots:3"} {
				if !strings.Contains(resolv, want) {
					t.Errorf("%s: %s: resolv.conf lacks %q:\n%s", tg.name, name, want, resolv)
				}
			}
		}
		if !clusterDNS {
			ev := e.waitEvent(t, ns, "dns-withhostnet", "MissingClusterDNS", "", 60*time.Second)
			if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, `Falling back to "Default" policy`) {
				t.Errorf("%s: MissingClusterDNS event %s", tg.name, describeEvent(ev))
			}
		}
		for name := range pods {
			e.deletePod(t, ns, name)
			e.assertClean(t, h, ns, name, pods[name].UID)
		}
		// A pod on the pod network under ClusterFirst: the cluster's DNS, as the kubelet
		// gives it (or the host's, with MissingClusterDNS, without a tunnel).
		pod := tg.pod("dns-podnet", corev1.RestartPolicyNever, "cat /etc/hosts; echo ---; cat /etc/resolv.conf")
		pod.Spec.HostNetwork, pod.Spec.DNSPolicy = false, corev1.DNSClusterFirst
		pod = e.createPod(t, ns, pod)
		out := e.runToLogs(t, ns, pod)
		hosts, resolv, _ := strings.Cut(out, "---\n")
		if clusterDNS {
			withDNS.add(tg.name, "dns-podnet resolv.conf", sortOptions(strings.ReplaceAll(resolv, ns, "<ns>")))
		} else {
			hostResolv, err := h.Output(context.Background(), "cat /etc/resolv.conf")
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(hostResolv), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "nameserver" && !strings.Contains(resolv, "nameserver "+f[1]+"\n") {
					t.Errorf("%s: the host's nameserver %s is not in the pod's resolv.conf:\n%s", tg.name, f[1], out)
				}
			}
			if ev := e.waitEvent(t, ns, pod.Name, "MissingClusterDNS", "", 60*time.Second); ev.Type != corev1.EventTypeWarning ||
				!strings.Contains(ev.Message, `Falling back to "Default" policy`) {
				t.Errorf("%s: MissingClusterDNS event %s", tg.name, describeEvent(ev))
			}
		}
		if !tg.reference && !strings.HasPrefix(hosts, "# Kubernetes-managed hosts file (host network).\n") {
			t.Errorf("%s: pod-network pod's /etc/hosts:\n%s", tg.name, out)
		}
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
	obs.compare(t)
	withDNS.compare(t)
}

// Env as the kubelet resolves it: status.podIP and status.hostIP (the pod's and host's
// addresses, as its status reports them), resourceFieldRef with divisors, unset limits read as
// the node's allocatable, $(VAR) expansion of them; a missing Secret leaves the container in
// CreateContainerConfigError until the Secret exists.
func TestIntegrationParityEnv(t *testing.T) {
	e := loadEnv(t)
	var obs observations
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		ctx := context.Background()
		vars := []string{"POD_IP", "POD_IPS", "HOST_IP", "HOST_IPS", "URL", "NODE", "CPU_LIMIT", "CPU_REQUEST", "CPU_CORES",
			"MEM_LIMIT", "MEM_REQUEST", "DEFAULT_CPU", "DEFAULT_MEM"}
		// The test image's busybox has no printenv: the shell reads each variable by name.
		pod := tg.pod("env", corev1.RestartPolicyNever, `for v in `+strings.Join(vars, " ")+`; do eval "val=\"\${$v}\""; echo "$v=$val"; done`)
		field := func(p string) *corev1.EnvVarSource {
			return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: p}}
		}
		res := func(container, r, divisor string) *corev1.EnvVarSource {
			return &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: container, Resource: r, Divisor: resource.MustParse(divisor)}}
		}
		main := &pod.Spec.Containers[0]
		main.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}
		main.Env = []corev1.EnvVar{
			{Name: "POD_IP", ValueFrom: field("status.podIP")}, {Name: "POD_IPS", ValueFrom: field("status.podIPs")},
			{Name: "HOST_IP", ValueFrom: field("status.hostIP")}, {Name: "HOST_IPS", ValueFrom: field("status.hostIPs")},
			{Name: "URL", Value: "http://$(POD_IP):8080/$(CPU_LIMIT)"}, // CPU_LIMIT is declared later: left as written
			{Name: "NODE", ValueFrom: field("spec.nodeName")},
			{Name: "CPU_LIMIT", ValueFrom: res("", "limits.cpu", "1m")}, {Name: "CPU_REQUEST", ValueFrom: res("main", "requests.cpu", "1m")},
			{Name: "CPU_CORES", ValueFrom: res("", "limits.cpu", "1")}, {Name: "MEM_LIMIT", ValueFrom: res("", "limits.memory", "1Mi")},
			{Name: "MEM_REQUEST", ValueFrom: res("", "requests.memory", "1")},
			{Name: "DEFAULT_CPU", ValueFrom: res("unlimited", "limits.cpu", "1m")}, {Name: "DEFAULT_MEM", ValueFrom: res("unlimited", "limits.memory", "1")},
		}
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "unlimited", Image: testImage, Command: []string{"true"}})
		pod = e.createPod(t, ns, pod)
		e.waitPod(t, ns, pod.Name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		out := e.mustKubectl(t, "", "-n", ns, "logs", pod.Name, "-c", "main")
		got, err := e.client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node, err := e.client.CoreV1().Nodes().Get(ctx, tg.node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		alloc := node.Status.Allocatable
		ip, hostIP := got.Status.PodIP, got.Status.HostIP
		want := map[string]string{"POD_IP": ip, "POD_IPS": ip, "HOST_IP": hostIP, "HOST_IPS": hostIP, "URL": "http://" + ip + ":8080/$(CPU_LIMIT)",
			"NODE": tg.node, "CPU_LIMIT": "250", "CPU_REQUEST": "100", "CPU_CORES": "1", "MEM_LIMIT": "64", "MEM_REQUEST": "33554432",
			"DEFAULT_CPU": strconv.FormatInt(alloc.Cpu().MilliValue(), 10), "DEFAULT_MEM": strconv.FormatInt(alloc.Memory().Value(), 10)}
		// What differs between nodes by construction is named; the rest must be the kubelet's.
		same := out
		for _, v := range []string{"POD_IP", "POD_IPS", "HOST_IP", "HOST_IPS", "NODE", "DEFAULT_CPU", "DEFAULT_MEM"} {
			same = strings.Replace(same, v+"="+want[v]+"\n", v+"=<"+strings.ToLower(v)+">\n", 1)
		}
		same = strings.ReplaceAll(same, "http://"+ip+":", "http://<pod_ip>:")
		obs.add(tg.name, "env", same)
		for _, v := range vars {
			if !strings.Contains(out, v+"="+want[v]+"\n") {
				t.Errorf("%s: want %s=%s in\n%s", tg.name, v, want[v], out)
			}
		}
		if ip == "" || hostIP == "" {
			t.Errorf("%s: pod IP %q, host IP %q", tg.name, ip, hostIP)
		}
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)

		// A Secret that is not there yet.
		missing := tg.pod("env-missing", corev1.RestartPolicyNever, `echo "token=$TOKEN"`)
		missing.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "later"}, Key: "token"}}}}
		missing = e.createPod(t, ns, missing)
		waiting := e.waitPod(t, ns, missing.Name, 60*time.Second, "CreateContainerConfigError", func(p *corev1.Pod) bool {
			cs := ctrStatus(p, "main")
			return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
		})
		cs := ctrStatus(waiting, "main")
		obs.add(tg.name, "missing secret", fmt.Sprintf("%s: %s", waiting.Status.Phase, cs.State.Waiting.Message))
		if cs.State.Waiting.Message != `secret "later" not found` {
			t.Errorf("%s: waiting message %q", tg.name, cs.State.Waiting.Message)
		}
		if _, err := e.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "later"},
			StringData: map[string]string{"token": "arrived"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if out := e.runToLogs(t, ns, missing); out != "token=arrived\n" {
			t.Errorf("%s: once the Secret exists the container printed %q", tg.name, out)
		}
		e.deletePod(t, ns, missing.Name)
		e.assertClean(t, h, ns, missing.Name, missing.UID)
	})
	obs.compare(t)
}
