package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubeletClient calls a node's kubelet API directly, verifying its serving certificate against
// the cluster CA (Satellite's comes from a CSR, signed by the cluster's signer).
func (e *env) kubeletClient(t *testing.T) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(strings.TrimSuffix(e.get(t, "KUBECONFIG"), "admin.kubeconfig") + "pki/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("no CA certificate")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
}

// saToken is a token of a new service account in ns, bound to the given rules on nodes.
func (e *env) saToken(t *testing.T, ns, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	if _, err := e.client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rules != nil {
		role := ns + "-" + name
		if _, err := e.client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.client.RbacV1().ClusterRoles().Delete(context.Background(), role, metav1.DeleteOptions{})
		})
		if _, err := e.client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.client.RbacV1().ClusterRoleBindings().Delete(context.Background(), role, metav1.DeleteOptions{})
		})
	}
	tr, err := e.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestIntegrationKubeletAPIAuthz is the kubelet API's authorization matrix against the running
// Satellite nodes, with the reference kubelet answering the same requests.
func TestIntegrationKubeletAPIAuthz(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	client := e.kubeletClient(t)
	nobody := e.saToken(t, ns, "nobody", nil)
	reader := e.saToken(t, ns, "proxy-reader", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy", "nodes/log", "nodes/stats"}, Verbs: []string{"get"}}})

	type req struct {
		name, method, path, upgrade string
	}
	for _, tg := range e.streamTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			pod := e.createPod(t, ns, tg.pod("authz", corev1.RestartPolicyNever, "echo visible-log; sleep 3600"))
			pod = e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
			n, err := e.client.CoreV1().Nodes().Get(context.Background(), tg.node, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			base := fmt.Sprintf("https://%s:%d", n.Status.Addresses[0].Address, n.Status.DaemonEndpoints.KubeletEndpoint.Port)
			c := pod.Spec.Containers[0].Name
			logs := req{"logs", "GET", fmt.Sprintf("/containerLogs/%s/%s/%s", ns, pod.Name, c), ""}
			execQ := fmt.Sprintf("/exec/%s/%s/%s?command=true&output=1", ns, pod.Name, c)
			execSPDY := req{"exec over SPDY", "POST", execQ, "SPDY/3.1"}
			execWS := req{"exec over WebSocket", "GET", execQ, "websocket"}
			stats := req{"stats", "GET", "/stats/summary", ""}
			do := func(token string, r req) (int, string) {
				t.Helper()
				hr, err := http.NewRequest(r.method, base+r.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if token != "" {
					hr.Header.Set("Authorization", "Bearer "+token)
				}
				if r.upgrade != "" {
					hr.Header.Set("Connection", "Upgrade")
					hr.Header.Set("Upgrade", r.upgrade)
					if r.upgrade == "websocket" {
						hr.Header.Set("Sec-WebSocket-Version", "13")
						hr.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
						hr.Header.Set("Sec-WebSocket-Protocol", "v5.channel.k8s.io")
					} else {
						hr.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
					}
				}
				resp, err := client.Do(hr)
				if err != nil {
					t.Fatalf("%s %s: %v", r.method, r.path, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return resp.StatusCode, string(b)
			}
			cases := []struct {
				who, token string
				r          req
				want       int
			}{
				{"anonymous", "", logs, 401},
				{"anonymous", "", execSPDY, 401},
				{"anonymous", "", stats, 401},
				{"no rights", nobody, logs, 403},
				{"no rights", nobody, execSPDY, 403},
				{"no rights", nobody, execWS, 403},
				{"no rights", nobody, stats, 403},
				{"get nodes/proxy", reader, logs, 200},
				{"get nodes/proxy", reader, execSPDY, 403},
				{"get nodes/proxy", reader, execWS, 403},
			}
			for _, tc := range cases {
				code, body := do(tc.token, tc.r)
				if code != tc.want {
					t.Errorf("%s, %s: HTTP %d, want %d (%s)", tc.who, tc.r.name, code, tc.want, strings.TrimSpace(body))
					continue
				}
				switch code {
				case 403:
					// The kubelet refuses a WebSocket upgrade with an empty body; Satellite
					// names what was denied either way.
					if tg.reference && tc.r.upgrade == "websocket" {
						break
					}
					if !strings.Contains(body, "verb=") || !strings.Contains(body, "resource=nodes") {
						t.Errorf("%s, %s: 403 body %q does not say what was denied, as the kubelet's does", tc.who, tc.r.name, body)
					}
				case 200:
					if !strings.Contains(body, "visible-log") {
						t.Errorf("%s, %s: 200 without the log: %q", tc.who, tc.r.name, body)
					}
				}
			}
			// The apiserver's own client certificate, through kubectl, is allowed both ways.
			for _, proto := range protocols {
				out, err := e.kubectlEnv(t, []string{proto.env}, "-n", ns, "exec", pod.Name, "--", "echo", "allowed")
				if err != nil || strings.TrimSpace(out) != "allowed" {
					t.Errorf("kubectl exec (%s) as the apiserver: %q, %v", proto.name, out, err)
				}
			}
			if out := e.mustKubectl(t, "", "-n", ns, "logs", pod.Name); !strings.Contains(out, "visible-log") {
				t.Errorf("kubectl logs as the apiserver: %q", out)
			}
			e.deletePod(t, ns, pod.Name)
		})
	}
}

// kubectlEnv runs kubectl with extra environment variables.
func (e *env) kubectlEnv(t *testing.T, extra []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.get(t, "KUBECTL"), args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG")), extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
