package kuberuntime

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestParseResolvConf(t *testing.T) {
	t.Parallel()
	in := `# generated
nameserver 10.0.0.2
search first.example
  nameserver   10.0.0.3   # trailing words are ignored
nameserver
options rotate
search corp.example. example.com
options ndots:2 timeout:1
; a comment the kubelet does not know
`
	got := ParseResolvConf([]byte(in))
	want := &runtimeapi.DNSConfig{Servers: []string{"10.0.0.2", "10.0.0.3"}, Searches: []string{"corp.example", "example.com"},
		Options: []string{"ndots:2", "timeout:1"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if e := ParseResolvConf(nil); len(e.Servers)+len(e.Searches)+len(e.Options) != 0 {
		t.Errorf("empty file: %v", e)
	}
}

func TestPodDNSConfig(t *testing.T) {
	t.Parallel()
	host := &runtimeapi.DNSConfig{Servers: []string{"10.0.0.2"}, Searches: []string{"corp.example"}, Options: []string{"ndots:2", "edns0"}}
	dnsConfig := &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "10.0.0.2"}, Searches: []string{"ns1.svc.example", "corp.example"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}, {Name: "single-request"}}}
	missing := `pod: "web-0_shop(u-1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`
	cluster := ClusterDNS{Servers: []string{"10.96.0.10"}, Domain: "cluster.local"}
	clusterFirst := "servers=10.96.0.10 searches=shop.svc.cluster.local,svc.cluster.local,cluster.local,corp.example options=ndots:5"
	tests := []struct {
		policy      corev1.DNSPolicy
		hostNetwork bool
		config      *corev1.PodDNSConfig
		cluster     ClusterDNS
		want        string
		warning     string
	}{
		// With the cluster's DNS, as a kubelet with clusterDNS and clusterDomain.
		{policy: corev1.DNSClusterFirst, cluster: cluster, want: clusterFirst},
		{policy: corev1.DNSClusterFirstWithHostNet, hostNetwork: true, cluster: cluster, want: clusterFirst},
		{policy: corev1.DNSClusterFirst, hostNetwork: true, cluster: cluster, want: "servers=10.0.0.2 searches=corp.example options=ndots:2,edns0"},
		{policy: corev1.DNSDefault, cluster: cluster, want: "servers=10.0.0.2 searches=corp.example options=ndots:2,edns0"},
		{policy: corev1.DNSClusterFirst, cluster: cluster, config: dnsConfig,
			want: "servers=10.96.0.10,1.1.1.1,10.0.0.2 searches=shop.svc.cluster.local,svc.cluster.local,cluster.local,corp.example,ns1.svc.example options=ndots:5,single-request"},
		{policy: corev1.DNSClusterFirst, cluster: ClusterDNS{Servers: []string{"10.96.0.10"}},
			want: "servers=10.96.0.10 searches=corp.example options=ndots:5"},
		// Without it, as a kubelet without clusterDNS.
		{policy: corev1.DNSDefault, want: "servers=10.0.0.2 searches=corp.example options=ndots:2,edns0"},
		{policy: corev1.DNSClusterFirst, hostNetwork: true, want: "servers=10.0.0.2 searches=corp.example options=ndots:2,edns0"},
		{policy: corev1.DNSClusterFirst, want: "servers=10.0.0.2 searches=corp.example options=ndots:2,edns0", warning: missing},
		{policy: corev1.DNSClusterFirstWithHostNet, hostNetwork: true, want: "servers=10.0.0.2 searches=corp.example options=ndots:2,edns0", warning: missing},
		{policy: corev1.DNSNone, config: dnsConfig, want: "servers=1.1.1.1,10.0.0.2 searches=ns1.svc.example,corp.example options=ndots:5,single-request"},
		{policy: corev1.DNSNone, config: &corev1.PodDNSConfig{}, want: "servers= searches= options="},
		{policy: corev1.DNSDefault, config: dnsConfig,
			want: "servers=10.0.0.2,1.1.1.1 searches=corp.example,ns1.svc.example options=ndots:5,edns0,single-request"},
		{policy: corev1.DNSClusterFirst, hostNetwork: true, config: dnsConfig,
			want: "servers=10.0.0.2,1.1.1.1 searches=corp.example,ns1.svc.example options=ndots:5,edns0,single-request"},
		{policy: corev1.DNSClusterFirstWithHostNet, config: dnsConfig,
			want: "servers=10.0.0.2,1.1.1.1 searches=corp.example,ns1.svc.example options=ndots:5,edns0,single-request", warning: missing},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "u-1"},
			Spec: corev1.PodSpec{DNSPolicy: tt.policy, HostNetwork: tt.hostNetwork, DNSConfig: tt.config}}
		cfg, warnings := PodDNSConfig(pod, host, tt.cluster)
		got := fmt.Sprintf("servers=%s searches=%s options=%s", strings.Join(cfg.Servers, ","), strings.Join(cfg.Searches, ","), strings.Join(cfg.Options, ","))
		if got != tt.want {
			t.Errorf("%s hostNetwork=%v dnsConfig=%v cluster=%v:\n got %s\nwant %s", tt.policy, tt.hostNetwork, tt.config != nil, tt.cluster, got, tt.want)
		}
		var gotWarning string
		for _, w := range warnings {
			gotWarning = w.Message
			if w.Reason != "MissingClusterDNS" || !strings.HasSuffix(w.Message, w.NodeMessage) || !strings.HasPrefix(w.NodeMessage, "kubelet does not") {
				t.Errorf("%s: warning %+v", tt.policy, w)
			}
		}
		if gotWarning != tt.warning {
			t.Errorf("%s hostNetwork=%v: warning %q, want %q", tt.policy, tt.hostNetwork, gotWarning, tt.warning)
		}
	}
	if host.Servers[0] != "10.0.0.2" || len(host.Servers) != 1 || len(host.Options) != 2 {
		t.Errorf("the host's configuration was changed: %v", host)
	}
}

func TestPodDNSConfigLimits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 254)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("d%02d.example", i))
	}
	// 20 domains of 120 characters: a 2419-character line, cut to the 16 that fit in 2048.
	var wide []string
	for i := range 20 {
		wide = append(wide, fmt.Sprintf("%02d", i)+strings.Repeat("w", 118))
	}
	tests := []struct {
		name              string
		servers, searches []string
		wantServers       int
		wantSearches      []string
		wantWarningPrefix []string
	}{
		{name: "four nameservers", servers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"}, wantServers: 3,
			wantWarningPrefix: []string{"Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 1.1.1.1 2.2.2.2 3.3.3.3"}},
		{name: "too long a domain", searches: []string{"a.example", long, "b.example"}, wantSearches: []string{"a.example", "b.example"},
			wantWarningPrefix: []string{"Search Line limits were exceeded, some search paths have been omitted, the applied search line is: a.example b.example"}},
		{name: "more than 32 domains", searches: many, wantSearches: many[:32],
			wantWarningPrefix: []string{"Search Line limits were exceeded"}},
		{name: "search line over 2048 characters", searches: wide, wantSearches: wide[:16],
			wantWarningPrefix: []string{"Search Line limits were exceeded"}},
		{name: "within limits", servers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}, searches: many[:32], wantServers: 3, wantSearches: many[:32]},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{Spec: corev1.PodSpec{DNSPolicy: corev1.DNSNone,
			DNSConfig: &corev1.PodDNSConfig{Nameservers: tt.servers, Searches: tt.searches}}}
		cfg, warnings := PodDNSConfig(pod, &runtimeapi.DNSConfig{}, ClusterDNS{})
		if len(cfg.Servers) != tt.wantServers || strings.Join(cfg.Searches, " ") != strings.Join(tt.wantSearches, " ") {
			t.Errorf("%s: servers %v searches %v", tt.name, cfg.Servers, cfg.Searches)
		}
		if l := len(strings.Join(cfg.Searches, " ")); l > maxDNSSearchListChars {
			t.Errorf("%s: search line of %d characters", tt.name, l)
		}
		if len(warnings) != len(tt.wantWarningPrefix) {
			t.Errorf("%s: warnings %+v, want %d", tt.name, warnings, len(tt.wantWarningPrefix))
			continue
		}
		for i, w := range warnings {
			if w.Reason != "DNSConfigForming" || !strings.HasPrefix(w.Message, tt.wantWarningPrefix[i]) || w.NodeMessage != "" {
				t.Errorf("%s: warning %+v, want DNSConfigForming %q...", tt.name, w, tt.wantWarningPrefix[i])
			}
		}
	}
}
