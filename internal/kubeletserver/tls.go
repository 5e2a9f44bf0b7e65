package kubeletserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"

	"github.com/virtual-kubelet/virtual-kubelet/log"
)

// Serving certificate modes of the kubelet API.
const (
	TLSModeFiles      = "files"       // --tls-cert-file and --tls-private-key-file
	TLSModeCSR        = "csr"         // requested through the certificates.k8s.io API, rotated
	TLSModeSelfSigned = "self-signed" // generated at start; only when asked for explicitly
)

// CertConfig says where the kubelet API's serving certificate comes from.
type CertConfig struct {
	Mode              string // TLSModeFiles, TLSModeCSR or TLSModeSelfSigned
	CertFile, KeyFile string // TLSModeFiles
	NodeName, NodeIP  string // the names the certificate is for
	Signer            string // TLSModeCSR: the CSR's signerName
	SelfApprove       bool   // TLSModeCSR: approve Satellite's own CSRs
}

// GetCertificate is tls.Config's GetCertificate.
type GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error)

// ServingCertificate returns the kubelet API's GetCertificate. In csr mode a certificate
// manager (client-go's, the one the kubelet uses) requests the certificate with a CSR for the
// node's name and address, keeps it in memory only, and renews it before it expires; the
// returned function then serves whichever certificate is current, so rotation never drops a
// connection already made. It runs until ctx ends.
// The second function, when not nil, approves Satellite's own CSRs until its context ends; the
// caller runs it.
func ServingCertificate(ctx context.Context, client kubernetes.Interface, c CertConfig) (GetCertificate, func(context.Context) error, error) {
	ip := net.ParseIP(c.NodeIP)
	switch c.Mode {
	case TLSModeFiles:
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-cert-file/--tls-private-key-file: %w", err)
		}
		return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }, nil, nil
	case TLSModeSelfSigned:
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(c.NodeName, []net.IP{ip}, []string{c.NodeName})
		if err != nil {
			return nil, nil, fmt.Errorf("self-signed serving certificate: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("self-signed serving certificate: %w", err)
		}
		return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }, nil, nil
	}
	subject := pkix.Name{CommonName: "system:node:" + c.NodeName, Organization: []string{"system:nodes"}}
	m, err := certificate.NewManager(&certificate.Config{
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) {
			return namedCSRs{Interface: client, node: c.NodeName}, nil
		},
		Template: &x509.CertificateRequest{
			Subject:     subject,
			DNSNames:    []string{c.NodeName},
			IPAddresses: []net.IP{ip},
		},
		SignerName:       c.Signer,
		GetUsages:        certificate.DefaultKubeletServingGetUsages,
		CertificateStore: &memoryStore{},
		Name:             "kubelet-serving",
		Ctx:              &ctx,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate manager: %w", err)
	}
	var approve func(context.Context) error
	if c.SelfApprove {
		approve = func(ctx context.Context) error {
			approveOwnCSRs(ctx, client, c.Signer, subject, c.NodeName, ip)
			return nil
		}
	}
	m.Start()
	context.AfterFunc(ctx, m.Stop)
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if cur := m.Current(); cur != nil {
			return cur, nil
		}
		return nil, errors.New("serving certificate not issued yet: its CertificateSigningRequest awaits approval")
	}, approve, nil
}

// WaitForCertificate waits until get has a certificate, logging once a minute while the CSR
// is pending, so that a cluster that never approves it says so in the log.
func WaitForCertificate(ctx context.Context, get GetCertificate) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	logged := time.Now()
	for {
		_, err := get(nil)
		if err == nil {
			return
		}
		if time.Since(logged) > time.Minute {
			log.G(ctx).WithError(err).Warn("kubelet API not serving: approve the node's CSR (kubectl certificate approve), or set --csr-self-approve")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// approveOwnCSRs approves the pending CSRs that are Satellite's own serving certificate
// requests and nothing else: made by this very identity, for this signer, with exactly this
// node's subject, name and address and serving usages. RBAC limits the approval to the one
// signer (the chart grants approve on signers/<signer> only).
func approveOwnCSRs(ctx context.Context, client kubernetes.Interface, signer string, subject pkix.Name, nodeName string, ip net.IP) {
	self, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		log.G(ctx).WithError(err).Error("--csr-self-approve: cannot learn my own identity (SelfSubjectReview); CSRs must be approved by hand")
		return
	}
	me := self.Status.UserInfo.Username
	sel := fields.OneTermEqualSelector("spec.signerName", signer).String()
	for ctx.Err() == nil {
		w, err := client.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			log.G(ctx).WithError(err).Warn("--csr-self-approve: watch CSRs")
			sleepCtx(ctx, 5*time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			csr, ok := ev.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) || decided(csr) {
				continue
			}
			if why := ownCSR(csr, me, subject, nodeName, ip); why != "" {
				log.G(ctx).WithField("csr", csr.Name).Debug("not approving: " + why)
				continue
			}
			csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
				Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
				Reason: "SatelliteSelfApproved", Message: "serving certificate of node " + nodeName + ", approved by its own Satellite",
			})
			if _, err := client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
				log.G(ctx).WithError(err).WithField("csr", csr.Name).Warn("--csr-self-approve: approve my CSR")
				continue
			}
			log.G(ctx).WithField("csr", csr.Name).Info("approved my serving certificate's CSR")
		}
		w.Stop()
	}
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
			return true
		}
	}
	return false
}

// ownCSR says why csr is not one Satellite should approve, or "" when it is.
func ownCSR(csr *certificatesv1.CertificateSigningRequest, me string, subject pkix.Name, nodeName string, ip net.IP) string {
	if csr.Spec.Username != me {
		return "requested by " + csr.Spec.Username
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return "unparsable request"
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "unparsable request"
	}
	if req.Subject.CommonName != subject.CommonName || !slices.Equal(req.Subject.Organization, subject.Organization) {
		return "subject " + req.Subject.String()
	}
	if !slices.Equal(req.DNSNames, []string{nodeName}) || len(req.IPAddresses) != 1 || !req.IPAddresses[0].Equal(ip) ||
		len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return "names other than the node's"
	}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth:
		default:
			return "usage " + string(u)
		}
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// memoryStore keeps the serving certificate and its key in memory only: the key never
// touches a disk, and a restarted Satellite requests a new certificate.
type memoryStore struct {
	mu   sync.Mutex
	cert *tls.Certificate
}

func (s *memoryStore) Current() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		e := certificate.NoCertKeyError("no serving certificate yet")
		return nil, &e
	}
	return s.cert, nil
}

func (s *memoryStore) Update(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert = &pair
	return &pair, nil
}
