package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const chartDir = "../../charts/satellite"

// helm runs the environment's helm (built from the Go module proxy) against the local cluster.
func (e *env) helm(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.get(t, "HELM"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.get(t, "KUBECONFIG"), "HELM_CACHE_HOME="+t.TempDir(),
		"HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// TestIntegrationHelm is the user's own flow: Satellite's image (built without Docker) installed
// with helm into the cluster, where it runs as a pod on the reference kubelet's node, registers
// its node with a CSR-issued serving certificate, runs a Deployment on the remote host with
// logs and exec working through it; helm uninstall then removes the node and leaves the host
// clean.
func TestIntegrationHelm(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	const region, eniIP = "us-west-2", "10.213.0.1"
	node := "fargate-ip-10-213-0-1." + region + ".compute.internal"

	// The image, as an OCI archive, into the reference node's containerd.
	image := "localhost/satellite/satellite:e2e"
	archive := filepath.Join(t.TempDir(), "satellite.tar")
	if out, err := exec.Command("bash", "../../hack/image-oci.sh", archive, image).CombinedOutput(); err != nil {
		t.Fatalf("build image: %v\n%s", err, out)
	}
	if out, err := exec.Command(e.get(t, "CTR"), "-a", e.get(t, "REFERENCE_CONTAINERD_SOCKET"), "-n", "k8s.io",
		"images", "import", archive).CombinedOutput(); err != nil {
		t.Fatalf("import image: %v\n%s", err, out)
	}

	e.mustKubectl(t, "", "-n", ns, "create", "secret", "generic", "satellite-ssh",
		"--from-file=ssh-privatekey="+e.get(t, "HOST_SSH_KEY"), "--from-file=known_hosts="+e.get(t, "HOST_KNOWN_HOSTS"))
	logDir, err := filepath.Abs("../../_output/dev/satellite-helm/pods")
	if err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Join(filepath.Dir(logDir), "volumes")
	// The reference node's kubelet holds 10250 and 10248 in the network Satellite shares (host
	// network: the remote host's firewall lets in its sshd from the reference node's address,
	// not from its pods'). Its tunnel takes the host's routes from the environment's Satellite
	// (one host, two Satellites: not a setup to run), which puts them back once this one is
	// uninstalled: the check below of what uninstall leaves on the host.
	values := fmt.Sprintf(`
region: %s
ssh: {existingSecret: satellite-ssh}
hosts:
- name: local
  ssh: %s
  eniIP: %s
  hostIP: 10.213.0.2
  containerdSocket: %s
  containerdRoot: %s
  podLogDir: %s
  podDir: %s
image: {repository: localhost/satellite/satellite, tag: e2e, pullPolicy: Never}
hostNetwork: true
tunnel: true
clusterCIDRs: [10.214.0.0/24]
kubeletAPI: {port: 10350}
healthPort: 10358
kubernetesAPI: {host: 10.213.0.1, port: "6443"}
nodeSelector: {kubernetes.io/hostname: %s}
tolerations: [{key: reference, operator: Exists}]
logLevel: debug
denyHostAccess: true
`, region, e.get(t, "HOST_SSH"), eniIP, e.get(t, "HOST_CONTAINERD_SOCKET"), e.get(t, "HOST_CONTAINERD_ROOT"), logDir, podDir, e.get(t, "REFERENCE_NODE"))
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(valuesFile, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled { // leave the cluster as it was, whatever failed
			_, _ = e.helm(t, 3*time.Minute, "uninstall", "sat", "-n", ns, "--wait", "--timeout", "2m")
			_ = e.client.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{})
		}
	})
	start := time.Now()
	if out, err := e.helm(t, 4*time.Minute, "install", "sat", chartDir, "-n", ns, "-f", valuesFile, "--wait", "--timeout", "3m"); err != nil {
		e.dumpSatellitePod(t, ns)
		t.Fatal(err)
	} else if !strings.Contains(out, "satellite.dev/host: local") {
		t.Errorf("NOTES do not say how to schedule a pod on the host:\n%s", out)
	}
	e.waitFor(t, 2*time.Minute, "node "+node+" Ready", func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return nodeIsReady(n), nil
	})
	t.Logf("helm install -> node Ready in %v", time.Since(start).Round(100*time.Millisecond))
	n, err := e.client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["satellite.dev/host"] != "local" || n.Labels["type"] != "virtual-kubelet" {
		t.Errorf("node labels %v: want satellite.dev/host=local and type=virtual-kubelet", n.Labels)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "virtual-kubelet.io/provider" {
		t.Errorf("node taints %v: want the Satellite taint only", n.Spec.Taints)
	}
	if got := n.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 10350 {
		t.Errorf("kubelet endpoint port %d, want 10350", got)
	}
	e.assertOwnCSRApproved(t, node, "system:serviceaccount:"+ns+":sat-satellite")
	why := e.nodeCondition(t, node, "ClusterNetwork", corev1.ConditionTrue, time.Minute)
	dev := regexp.MustCompile(`through (tun[0-9]+) on the host`).FindStringSubmatch(why)
	if dev == nil {
		t.Fatalf("ClusterNetwork condition %q names no device", why)
	}
	// Satellite reads the Secrets and ConfigMaps its pods name; it may not list or watch the
	// cluster's (the Deployment below reads a Secret through env and a volume).
	sa := "system:serviceaccount:" + ns + ":sat-satellite"
	for _, q := range []struct{ verb, resource, want string }{
		{"get", "secrets", "yes"}, {"list", "secrets", "no"}, {"watch", "secrets", "no"},
		{"get", "configmaps", "yes"}, {"list", "configmaps", "no"}, {"watch", "configmaps", "no"}, {"list", "services", "yes"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, _ := e.kubectl(ctx, t, "", "auth", "can-i", q.verb, q.resource, "--all-namespaces", "--as", sa)
		cancel()
		if got := strings.TrimSpace(out); got != q.want {
			t.Errorf("can the chart's ServiceAccount %s %s in all namespaces: %q, want %q", q.verb, q.resource, got, q.want)
		}
	}

	// A user's Deployment, placed the way NOTES.txt says, reading a Secret.
	e.mustKubectl(t, "", "-n", ns, "create", "secret", "generic", "web", "--from-literal=greeting=hello from the remote host")
	e.mustKubectl(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {satellite.dev/host: local}
      tolerations: [{key: virtual-kubelet.io/provider, operator: Equal, value: satellite, effect: NoSchedule}]
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: `+e.get(t, "TEST_IMAGE")+`
        command: [sh, -c, 'echo "$GREETING"; cat /etc/web/greeting; echo; exec sleep 3600']
        env: [{name: GREETING, valueFrom: {secretKeyRef: {name: web, key: greeting}}}]
        volumeMounts: [{name: web, mountPath: /etc/web}]
      volumes: [{name: web, secret: {secretName: web}}]
`, "-n", ns, "apply", "-f", "-")
	var pod *corev1.Pod
	e.waitFor(t, 90*time.Second, "the web pod running on "+node, func(ctx context.Context) (bool, error) {
		pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) != 1 {
			return false, err
		}
		pod = &pods.Items[0]
		return pod.Spec.NodeName == node && running(pod), nil
	})
	tg := target{name: "helm", node: node, socket: e.get(t, "HOST_CONTAINERD_SOCKET"), logDir: logDir, podDir: podDir}
	h := e.host(t, tg)
	e.mustHaveOnHost(t, h, pod)
	e.waitFor(t, 30*time.Second, "kubectl logs through the in-cluster Satellite", func(ctx context.Context) (bool, error) {
		out, err := e.kubectl(ctx, t, "", "-n", ns, "logs", "deploy/web")
		return strings.Contains(out, "hello from the remote host\nhello from the remote host"), err
	})
	if out := e.mustKubectl(t, "", "-n", ns, "exec", pod.Name, "--", "sh", "-c", "echo exec via $((40+2))"); strings.TrimSpace(out) != "exec via 42" {
		t.Errorf("kubectl exec through the in-cluster Satellite printed %q", out)
	}
	e.assertNodeRestriction(t, ns, "sat-satellite", node, pod)
	e.assertChartNodeGuards(t, ns, node)

	// helm uninstall: the node goes, and so does everything of it on the host.
	start = time.Now()
	if _, err := e.helm(t, 5*time.Minute, "uninstall", "sat", "-n", ns, "--wait", "--timeout", "4m"); err != nil {
		t.Fatal(err)
	}
	uninstalled = true
	t.Logf("helm uninstall took %v", time.Since(start).Round(100*time.Millisecond))
	if _, err := e.client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node %s after helm uninstall: %v, want NotFound", node, err)
	}
	e.assertClean(t, h, ns, pod.Name, pod.UID)
	e.assertTunnelGone(t, h, dev[1])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sbs, err := h.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"satellite.dev/node": node}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sbs.Items) != 0 {
		t.Errorf("host still has %d sandbox(es) of node %s after helm uninstall", len(sbs.Items), node)
	}
	for _, kind := range []string{"deployments", "clusterroles", "clusterrolebindings", "jobs", "serviceaccounts"} {
		out, _ := e.kubectl(ctx, t, "", "get", kind, "-A", "-l", "app.kubernetes.io/instance=sat", "-o", "name")
		if strings.Contains(out, "sat-satellite") {
			t.Errorf("helm uninstall left %s: %s", kind, out)
		}
	}
	e.mustKubectl(t, "", "-n", ns, "delete", "deployment", "web", "--wait=false")
}

// assertTunnelGone checks that the host has neither the device nor a route into it, and that
// the environment's Satellite has its routes back (it checks them every 30 s) with an event
// that says so.
func (e *env) assertTunnelGone(t *testing.T, h *host, dev string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Output(ctx, "ls /sys/class/net; ip -o route show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), dev) {
		t.Errorf("after helm uninstall the host still has %s or a route into it:\n%s", dev, out)
	}
	e.waitFor(t, 90*time.Second, "the environment's tunnel routes back on the host", func(ctx context.Context) (bool, error) {
		out, err := h.Output(ctx, "ip -o route show exact 10.96.0.0/16; ip -o route show exact 10.214.0.0/24")
		return strings.Count(string(out), " dev tun") == 2, err
	})
	env := e.targets(t)[0].node
	e.waitFor(t, 30*time.Second, "a TunnelRepaired event on "+env, func(ctx context.Context) (bool, error) {
		evs, err := e.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + env + ",reason=TunnelRepaired"})
		return err == nil && len(evs.Items) > 0, err
	})
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// assertOwnCSRApproved checks the node's serving certificate came through a CSR from Satellite's
// service account, approved by Satellite itself and signed.
func (e *env) assertOwnCSRApproved(t *testing.T, node, user string) {
	t.Helper()
	e.waitFor(t, 30*time.Second, "an issued serving-certificate CSR of "+node, func(ctx context.Context) (bool, error) {
		csrs, err := e.client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range csrs.Items {
			if c.Spec.Username != user || c.Spec.SignerName != certificatesv1.KubeletServingSignerName {
				continue
			}
			if !strings.HasPrefix(c.Name, "satellite-"+node+"-") { // named as EKS signs it
				continue
			}
			for _, cond := range c.Status.Conditions {
				if cond.Type == certificatesv1.CertificateApproved && cond.Reason == "SatelliteSelfApproved" && len(c.Status.Certificate) > 0 {
					return true, nil
				}
			}
		}
		return false, nil
	})
}

// dumpSatellitePod logs what the Satellite pod and its events say, to explain a failed install.
func (e *env) dumpSatellitePod(t *testing.T, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := e.kubectl(ctx, t, "", "-n", ns, "get", "pods,events", "-o", "wide")
	t.Log(out)
	out, _ = e.kubectl(ctx, t, "", "-n", ns, "logs", "-l", "app.kubernetes.io/name=satellite", "--tail=50")
	t.Log(out)
}

// serviceMonitorCRD stands in for the Prometheus Operator's CRD, so that the chart's
// ServiceMonitor can be validated by the apiserver.
const serviceMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// TestIntegrationHelmTemplate renders the chart with each of its examples and has the
// apiserver validate every object (server-side dry run); values that break the schema are
// refused by helm with a message naming the value.
func TestIntegrationHelmTemplate(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	e.mustKubectl(t, serviceMonitorCRD, "apply", "-f", "-")
	e.waitFor(t, 30*time.Second, "the ServiceMonitor CRD established", func(ctx context.Context) (bool, error) {
		out, err := e.kubectl(ctx, t, "", "get", "crd", "servicemonitors.monitoring.coreos.com",
			"-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
		return out == "True", err
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = e.kubectl(ctx, t, "", "delete", "crd", "servicemonitors.monitoring.coreos.com")
	})
	examples, err := filepath.Glob(chartDir + "/examples/*.yaml")
	if err != nil || len(examples) < 2 {
		t.Fatalf("chart examples: %v %v", examples, err)
	}
	for _, ex := range append([]string{""}, examples...) {
		name := "defaults"
		args := []string{"template", "sat", chartDir, "-n", ns}
		if ex != "" {
			name = filepath.Base(ex)
			args = append(args, "-f", ex)
		}
		t.Run(name, func(t *testing.T) {
			if out, err := e.helm(t, time.Minute, "lint", chartDir, "--strict", "-f", orEmpty(t, ex)); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			manifest, err := e.helm(t, time.Minute, args...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// No -n: every object names its namespace (the lease Role's is kube-node-lease).
			out, err := e.kubectl(ctx, t, manifest, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry run refused the chart: %v", err)
			}
			t.Logf("%d objects accepted", strings.Count(out, "(server dry run)"))
			if ex != "" && !strings.Contains(out, "deployment.apps/") {
				t.Errorf("no Deployment rendered:\n%s", out)
			}
		})
	}

	bad := []struct{ name, values, want string }{
		{"host name", "hosts: [{name: GPU_1, ssh: u@h, nodeName: n}]", "/hosts/0/name"},
		{"ssh target", "hosts: [{name: g, ssh: h, nodeName: n}]", "/hosts/0/ssh"},
		{"no node name", "hosts: [{name: g, ssh: u@h}]", "eniIP"},
		{"eni ip", "{region: us-west-2, hosts: [{name: g, ssh: u@h, eniIP: 10.0.0}]}", "/hosts/0/eniIP"},
		{"taint", "node: {taints: [no-effect]}", "/node/taints/0"},
		{"cert mode", "kubeletAPI: {servingCertificate: {mode: acme}}", "/kubeletAPI/servingCertificate/mode"},
		{"secret mode needs a secret", "kubeletAPI: {servingCertificate: {mode: secret}}", "secretName"},
		{"typo", "hostz: []", "hostz"},
		{"log level", "logLevel: verbose", "/logLevel"},
		{"reserved resource", "node: {reserved: {nvidia.com/gpu: 1}}", "/node/reserved"},
		{"reserved quantity", "node: {reserved: {memory: 2 GB}}", "/node/reserved/memory"},
		{"instance type", "hosts: [{name: g, ssh: u@h, nodeName: n, instanceType: gpu 1x a10}]", "/hosts/0/instanceType"},
		{"egress without the API server", "networkPolicy: {enabled: true, egress: {enabled: true, hosts: [{ipBlock: {cidr: 192.0.2.1/32}}]}}", "/networkPolicy/egress/apiServer"},
	}
	for _, b := range bad {
		t.Run("refuses/"+b.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(b.values+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := e.helm(t, time.Minute, "install", "bad", chartDir, "-n", ns, "-f", f, "--dry-run=server")
			if err == nil {
				t.Fatalf("helm install accepted %q", b.values)
			}
			if !strings.Contains(out, "schema") || !strings.Contains(out, b.want) {
				t.Errorf("helm's message for %q does not name %q:\n%s", b.values, b.want, out)
			}
		})
	}
}

// orEmpty is path, or an empty values file when path is "".
func orEmpty(t *testing.T, path string) string {
	if path != "" {
		return path
	}
	f := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
