package kubeletserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
)

// CSRName is the name Satellite gives its serving certificate's CSR: satellite-<node>-<16
// hex digits of the request's SHA-256>, a new one for each request (each has a new key).
// client-go's certificate manager names every CSR csr-<random>, and EKS approves but never
// signs a CSR whose name starts with csr- unless a kubelet made it
// (aws/containers-roadmap#2079); the kubelet itself names its own node-csr-<hash>.
func CSRName(node string, request []byte) string {
	sum := sha256.Sum256(request)
	const max = 253 - len("satellite--") - 16 // an object name's length, as for a DNS subdomain
	if len(node) > max {
		node = node[:max]
	}
	return "satellite-" + node + "-" + hex.EncodeToString(sum[:8])
}

// namedCSRs is a clientset whose CSRs created without a name get CSRName's: the certificate
// manager's requests, its rotation unchanged. Everything else passes through.
type namedCSRs struct {
	kubernetes.Interface
	node string
}

func (c namedCSRs) CertificatesV1() certificatesv1client.CertificatesV1Interface {
	return namedCertificatesV1{CertificatesV1Interface: c.Interface.CertificatesV1(), node: c.node}
}

// IsWatchListSemanticsUnSupported passes on what the wrapped clientset says (client-go's
// fake says true; a real one has no such method, which means false).
func (c namedCSRs) IsWatchListSemanticsUnSupported() bool {
	u, ok := c.Interface.(interface{ IsWatchListSemanticsUnSupported() bool })
	return ok && u.IsWatchListSemanticsUnSupported()
}

type namedCertificatesV1 struct {
	certificatesv1client.CertificatesV1Interface
	node string
}

func (c namedCertificatesV1) CertificateSigningRequests() certificatesv1client.CertificateSigningRequestInterface {
	return namedCSRClient{CertificateSigningRequestInterface: c.CertificatesV1Interface.CertificateSigningRequests(), node: c.node}
}

type namedCSRClient struct {
	certificatesv1client.CertificateSigningRequestInterface
	node string
}

func (c namedCSRClient) Create(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, opts metav1.CreateOptions) (*certificatesv1.CertificateSigningRequest, error) {
	if csr.Name == "" {
		csr = csr.DeepCopy()
		csr.Name, csr.GenerateName = CSRName(c.node, csr.Spec.Request), ""
	}
	return c.CertificateSigningRequestInterface.Create(ctx, csr, opts)
}
