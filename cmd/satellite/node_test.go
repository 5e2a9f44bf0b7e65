package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/cert"

	"github.com/satellite-vk/satellite/internal/vkadapter"
)

// fakePods is a PodLifecycleHandler that keeps what it is given.
type fakePods struct {
	mu      sync.Mutex
	created chan string
	byName  map[string]*corev1.Pod
}

func (p *fakePods) CreatePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	p.byName[pod.Namespace+"/"+pod.Name] = pod.DeepCopy()
	p.mu.Unlock()
	p.created <- pod.Name
	return nil
}
func (p *fakePods) UpdatePod(context.Context, *corev1.Pod) error { return nil }
func (p *fakePods) DeletePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.byName, pod.Namespace+"/"+pod.Name)
	return nil
}
func (p *fakePods) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pod, ok := p.byName[ns+"/"+name]; ok {
		return pod.DeepCopy(), nil
	}
	return nil, nil
}
func (p *fakePods) GetPodStatus(ctx context.Context, ns, name string) (*corev1.PodStatus, error) {
	pod, _ := p.GetPod(ctx, ns, name)
	if pod == nil {
		return nil, nil
	}
	return &pod.Status, nil
}
func (p *fakePods) GetPods(context.Context) ([]*corev1.Pod, error) { return nil, nil }

// The node built as nodeutil would build it registers the node and its lease, serves the
// kubelet API over TLS, runs the pods bound to it, and stops with its context.
func TestVKNode(t *testing.T) {
	client := fake.NewClientset()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &config{NodeName: "n1", Listen: l.Addr().String(), Workers: 1}
	l.Close()
	spec := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	p := &fakePods{created: make(chan string, 1), byName: map[string]*corev1.Pod{}}
	n, err := newVKNode(c, client, spec, p, node.NewNaiveNodeProvider(), nil, record.NewFakeRecorder(100), new(vkadapter.Listers))
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := cert.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	n.tls = serverTLS(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil })
	n.handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "kubelet API") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("Run before Ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not Ready after 20 s")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // a test's self-signed certificate
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + c.Listen + "/pods")
	if err != nil {
		t.Fatalf("kubelet API: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "kubelet API" || resp.TLS == nil {
		t.Errorf("kubelet API answered %q (TLS %v)", body, resp.TLS != nil)
	}
	bg := context.Background()
	if _, err := client.CoreV1().Nodes().Get(bg, "n1", metav1.GetOptions{}); err != nil {
		t.Errorf("node: %v", err)
	}
	if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(bg, "n1", metav1.GetOptions{}); err != nil {
		t.Errorf("lease: %v", err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	if _, err := client.CoreV1().Pods("ns").Create(bg, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-p.created:
		if name != "web" {
			t.Errorf("created %q, want web", name)
		}
	case <-time.After(20 * time.Second):
		t.Error("the pod bound to the node was not created in 20 s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return 20 s after its context ended")
	}
}
