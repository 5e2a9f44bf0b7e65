package kubeletserver

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The certificate manager's CSR carries Satellite's name, not csr-<random>, which EKS never
// signs (aws/containers-roadmap#2079).
func TestServingCSRName(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := fake.NewClientset()
	const node = "fargate-ip-10-0-9-178.us-east-1.compute.internal"
	_, _, err := ServingCertificate(ctx, client, CertConfig{Mode: TLSModeCSR, NodeName: node, NodeIP: "10.0.9.178",
		Signer: "beta.eks.amazonaws.com/app-serving"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		csrs, err := client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(csrs.Items) > 0 {
			c := csrs.Items[0]
			if want := CSRName(node, c.Spec.Request); c.Name != want || c.GenerateName != "" {
				t.Fatalf("CSR named %q (generateName %q), want %q", c.Name, c.GenerateName, want)
			}
			if !strings.HasPrefix(c.Name, "satellite-"+node+"-") || strings.HasPrefix(c.Name, "csr-") {
				t.Fatalf("CSR name %q", c.Name)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no CSR was created")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestCSRNameLength(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 300)
	if n := CSRName(long, []byte("r")); len(n) != 253 || !strings.HasPrefix(n, "satellite-aaa") {
		t.Errorf("name of %d characters: %q", len(n), n[:20])
	}
	if CSRName("n", []byte("a")) == CSRName("n", []byte("b")) {
		t.Error("two requests, one name")
	}
}
