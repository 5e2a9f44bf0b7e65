package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

// The node restriction policy's messages (charts/satellite/templates/admissionpolicy.yaml).
const (
	deniedPod   = "Satellite may write the status of, and delete, only pods bound to its own nodes"
	deniedToken = "Satellite may request only service account tokens bound to a Pod"
	deniedNode  = "Satellite may create and write only its own nodes"
	deniedLease = "Satellite may write only its own nodes' leases, in kube-node-lease"
	deniedCSR   = "Satellite may approve only the CSRs it requested itself"
	deniedCSRs  = "Satellite may request certificates only of its signer"
)

// dryRun makes a write that the apiserver authorizes and admits but does not persist: what the
// policy allows leaves nothing behind, and what it should refuse changes nothing if it did not.
var dryRun = []string{metav1.DryRunAll}

// assertNodeRestriction checks, with a token of the chart's Satellite service account sa in
// ns, that it can write only what a kubelet of its node could: each write out of its node's
// reach is refused (by RBAC or by the chart's node restriction policy), and the same write to
// its own node and pod (the running pod on it) is allowed.
func (e *env) assertNodeRestriction(t *testing.T, ns, sa, node string, pod *corev1.Pod) {
	t.Helper()
	sat := e.clientAs(t, strings.TrimSpace(e.mustKubectl(t, "", "-n", ns, "create", "token", sa, "--duration=10m")))
	ref := e.get(t, "REFERENCE_NODE")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("pods", func(t *testing.T) {
		other := e.podOn(t, ns, ref)
		status := []byte(`{"status":{"conditions":[{"type":"e2e.satellite.dev/Probe","status":"True"}]}}`)
		_, err := sat.CoreV1().Pods(ns).Patch(ctx, other.Name, types.MergePatchType, status, metav1.PatchOptions{DryRun: dryRun}, "status")
		refused(t, "patch the status of a pod on "+ref, err, deniedPod)
		err = sat.CoreV1().Pods(ns).Delete(ctx, other.Name, metav1.DeleteOptions{DryRun: dryRun})
		refused(t, "delete a pod on "+ref, err, deniedPod)
		_, err = sat.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, status, metav1.PatchOptions{DryRun: dryRun}, "status")
		allowed(t, "patch the status of its own pod", err)
		allowed(t, "delete its own pod", sat.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{DryRun: dryRun}))
	})

	t.Run("tokens", func(t *testing.T) {
		_, err := sat.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		refused(t, "create a token bound to no pod", err, deniedToken)
		bound := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}}
		_, err = sat.CoreV1().ServiceAccounts(ns).CreateToken(ctx, pod.Spec.ServiceAccountName, bound, metav1.CreateOptions{})
		allowed(t, "create a token bound to its pod", err)
	})

	t.Run("csr", func(t *testing.T) {
		csr := e.foreignCSR(t, ns)
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "E2E", Message: "must be refused"})
		_, err := sat.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{DryRun: dryRun})
		refused(t, "approve a CSR made by someone else", err, deniedCSR)
		other := csr.DeepCopy()
		other.ObjectMeta = metav1.ObjectMeta{GenerateName: "e2e-satellite-"}
		other.Status = certificatesv1.CertificateSigningRequestStatus{}
		other.Spec.SignerName = certificatesv1.KubeAPIServerClientSignerName
		other.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
		_, err = sat.CertificatesV1().CertificateSigningRequests().Create(ctx, other, metav1.CreateOptions{DryRun: dryRun})
		refused(t, "request a client certificate", err, deniedCSRs)
	})

	t.Run("leases", func(t *testing.T) {
		elsewhere, err := e.client.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sat.CoordinationV1().Leases(ns).Update(ctx, elsewhere, metav1.UpdateOptions{DryRun: dryRun})
		forbidden(t, "update its node's lease outside kube-node-lease", err)
		refLease, err := e.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, ref, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sat.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, refLease, metav1.UpdateOptions{DryRun: dryRun})
		forbidden(t, "update the lease of "+ref, err)
		_, err = sat.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "e2e-not-a-satellite-node"}}, metav1.CreateOptions{DryRun: dryRun})
		refused(t, "create the lease of another node", err, deniedLease)
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error { // Satellite renews it meanwhile
			own, err := sat.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node, metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = sat.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, own, metav1.UpdateOptions{DryRun: dryRun})
			return err
		})
		allowed(t, "read and update its own lease", err)
	})

	t.Run("nodes", func(t *testing.T) {
		label := []byte(`{"metadata":{"labels":{"e2e.satellite.dev/probe":"x"}}}`)
		_, err := sat.CoreV1().Nodes().Patch(ctx, ref, types.MergePatchType, label, metav1.PatchOptions{DryRun: dryRun})
		forbidden(t, "label "+ref, err)
		_, err = sat.CoreV1().Nodes().Patch(ctx, ref, types.MergePatchType, []byte(`{"status":{"capacity":{"cpu":"1000"}}}`), metav1.PatchOptions{DryRun: dryRun}, "status")
		forbidden(t, "patch the status of "+ref, err)
		_, err = sat.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "e2e-not-a-satellite-node"}}, metav1.CreateOptions{DryRun: dryRun})
		refused(t, "create another node", err, deniedNode)
		_, err = sat.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, label, metav1.PatchOptions{DryRun: dryRun})
		allowed(t, "label its own node", err)
	})
}

// clientAs is a client of the local cluster that authenticates with token only.
func (e *env) clientAs(t *testing.T, token string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.get(t, "KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.AnonymousClientConfig(cfg)
	cfg.BearerToken = token
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// podOn is a pod bound to node (the reference kubelet's), tolerating its taints.
func (e *env) podOn(t *testing.T, ns, node string) *corev1.Pod {
	t.Helper()
	zero := int64(0)
	return e.createPod(t, ns, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: &zero,
			Containers:                    []corev1.Container{{Name: "c", Image: e.get(t, "TEST_IMAGE"), Command: []string{"sleep", "3600"}}},
		},
	})
}

// foreignCSR is a pending kubelet-serving CSR made by the test's own (admin) identity, deleted
// when the test ends.
func (e *env) foreignCSR(t *testing.T, ns string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "system:node:" + ns, Organization: []string{"system:nodes"}},
		DNSNames: []string{ns},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := e.client.CertificatesV1().CertificateSigningRequests().Create(context.Background(), &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeletServingSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.client.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), csr.Name, metav1.DeleteOptions{})
	})
	return csr
}

// refused fails the test unless err is the node restriction policy's refusal with message.
func refused(t *testing.T, what string, err error, message string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("Satellite's service account may %s", what)
	case !strings.Contains(err.Error(), message):
		t.Errorf("%s: %v, want the node restriction policy's %q", what, err, message)
	default:
		t.Logf("%s: refused: %v", what, err)
	}
}

// forbidden fails the test unless RBAC refused err's request.
func forbidden(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: %v, want Forbidden by RBAC", what, err)
		return
	}
	t.Logf("%s: refused: %v", what, err)
}

func allowed(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("Satellite's service account may not %s: %v", what, err)
	}
}
