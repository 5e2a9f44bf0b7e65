package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestClusterNetwork(t *testing.T) {
	ctx := context.Background()
	cidr := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/16", "fd00:96::/108"}}}
	dns := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
	cases := []struct {
		name    string
		cfg     config
		objects []any
		want    string
		err     string
	}{
		{name: "found in the cluster", cfg: config{ClusterCIDRs: []string{"10.0.0.0/16", " 10.1.2.3/16"}, ClusterDomain: "cluster.local"}, objects: []any{cidr, dns},
			want: "[10.0.0.0/16 10.1.0.0/16 10.96.0.0/16] [10.96.0.10] cluster.local"},
		{name: "flags", cfg: config{ClusterDNS: []string{"10.100.0.10"}, ClusterDomain: "corp.internal"}, objects: []any{cidr, dns},
			want: "[10.96.0.0/16] [10.100.0.10] corp.internal"},
		{name: "no DNS Service", cfg: config{ClusterDomain: "cluster.local"}, objects: []any{cidr},
			want: "[10.96.0.0/16] [] cluster.local"},
		{name: "not a CIDR", cfg: config{ClusterCIDRs: []string{"10.0.0.0"}}, err: `--cluster-cidrs: "10.0.0.0" is not a CIDR`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			for _, o := range tc.objects {
				var err error
				switch o := o.(type) {
				case *networkingv1.ServiceCIDR:
					_, err = client.NetworkingV1().ServiceCIDRs().Create(ctx, o, metav1.CreateOptions{})
				case *corev1.Service:
					_, err = client.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			n, err := tc.cfg.clusterNetwork(ctx, client)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%v %v %s", n.Ranges, n.DNS, n.Domain); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
