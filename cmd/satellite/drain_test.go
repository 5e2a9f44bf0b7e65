package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestDrain(t *testing.T) {
	const node = "fargate-ip-10-0-9-178.us-west-2.compute.internal"
	sel := map[string]string{"app.kubernetes.io/instance": "gpu-1"}
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "work", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: node}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "satellite-gpu-1", Namespace: "satellite"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel}}},
	)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := drain(ctx, client, drainOptions{nodeName: node, deployment: "satellite/satellite-gpu-1", deleteNode: true}, &out)
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, out.String())
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
		t.Error("node still exists")
	}
	if pods, _ := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); len(pods.Items) != 0 {
		t.Errorf("pods left: %d", len(pods.Items))
	}
	d, err := client.AppsV1().Deployments("satellite").Get(ctx, "satellite-gpu-1", metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		t.Errorf("deployment not scaled to 0: %v %v", err, d.Spec.Replicas)
	}
	for _, want := range []string{"cordoned", "pod default/work deleted", "stopped", "deleted"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// A second run (the node is gone) succeeds: helm may retry the hook.
	out.Reset()
	if err := drain(ctx, client, drainOptions{nodeName: node, deleteNode: true}, &out); err != nil {
		t.Errorf("second drain: %v", err)
	}
}

// A node named after its ENI is found by its labels; none is nothing to drain; two are refused.
func TestNodeBySelector(t *testing.T) {
	t.Parallel()
	node := func(name, host string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"satellite.dev/host": host}}}
	}
	client := fake.NewClientset(node("fargate-ip-10-0-9-4.us-west-2.compute.internal", "a100-1"),
		node("fargate-ip-10-0-9-5.us-west-2.compute.internal", "a100-2"), node("fargate-ip-10-0-9-6.us-west-2.compute.internal", "a100-2"))
	ctx := context.Background()
	if name, err := nodeBySelector(ctx, client, "satellite.dev/host=a100-1"); err != nil || name != "fargate-ip-10-0-9-4.us-west-2.compute.internal" {
		t.Errorf("a100-1: %q, %v", name, err)
	}
	if name, err := nodeBySelector(ctx, client, "satellite.dev/host=gone"); err != nil || name != "" {
		t.Errorf("gone: %q, %v", name, err)
	}
	if _, err := nodeBySelector(ctx, client, "satellite.dev/host=a100-2"); err == nil {
		t.Error("two nodes: no error")
	}
	var out bytes.Buffer
	if err := drain(ctx, client, drainOptions{selector: "satellite.dev/host=gone", deleteNode: true}, &out); err != nil || out.String() != "no node has the labels satellite.dev/host=gone\n" {
		t.Errorf("drain of no node: %v\n%s", err, out.String())
	}
}
