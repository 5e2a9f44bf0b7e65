package vkadapter

import (
	"context"
	"slices"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// TestWithHeartbeat checks that the client the node is built with (inertClient around
// withHeartbeat) writes nodes and leases with the heartbeat client, everything else with the
// main one.
func TestWithHeartbeat(t *testing.T) {
	t.Parallel()
	main, hb := fake.NewClientset(), fake.NewClientset()
	c := inertClient{Interface: withHeartbeat{Interface: main, heartbeat: hb}}
	ctx := context.Background()
	meta := metav1.ObjectMeta{Name: "x", Namespace: "kube-node-lease"}
	if _, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoordinationV1().Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Pods("ns").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		what   string
		client kubernetes.Interface
		want   []string // verbs and resources seen
	}{
		{"heartbeat", hb, []string{"create nodes", "create leases"}},
		{"main", main, []string{"create pods"}},
	}
	for _, tc := range cases {
		var got []string
		for _, a := range tc.client.(*fake.Clientset).Actions() {
			got = append(got, a.GetVerb()+" "+a.GetResource().Resource)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s client: %v, want %v", tc.what, got, tc.want)
		}
	}
}
