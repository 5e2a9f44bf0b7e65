package kubeletserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
)

func csrFor(t *testing.T, user string, tmpl *x509.CertificateRequest, usages ...certificatesv1.KeyUsage) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if usages == nil {
		usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	}
	return &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
		Username: user, Usages: usages,
		Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
	}}
}

func TestOwnCSR(t *testing.T) {
	const me, node = "system:serviceaccount:satellite:satellite", "fargate-ip-10-0-9-178.us-west-2.compute.internal"
	ip := net.ParseIP("10.0.9.178")
	subject := pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}
	good := &x509.CertificateRequest{Subject: subject, DNSNames: []string{node}, IPAddresses: []net.IP{ip}}
	other := pkix.Name{CommonName: "system:node:other", Organization: []string{"system:nodes"}}
	cases := []struct {
		name string
		csr  *certificatesv1.CertificateSigningRequest
		ok   bool
	}{
		{"own", csrFor(t, me, good), true},
		{"another requester", csrFor(t, "system:node:other", good), false},
		{"another node's subject", csrFor(t, me, &x509.CertificateRequest{Subject: other, DNSNames: []string{node}, IPAddresses: []net.IP{ip}}), false},
		{"extra DNS name", csrFor(t, me, &x509.CertificateRequest{Subject: subject, DNSNames: []string{node, "kubernetes"}, IPAddresses: []net.IP{ip}}), false},
		{"another address", csrFor(t, me, &x509.CertificateRequest{Subject: subject, DNSNames: []string{node}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}}), false},
		{"client usage", csrFor(t, me, good, certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth), false},
	}
	for _, tc := range cases {
		why := ownCSR(tc.csr, me, subject, node, ip)
		if (why == "") != tc.ok {
			t.Errorf("%s: ownCSR = %q, want approved=%v", tc.name, why, tc.ok)
		}
	}
}
