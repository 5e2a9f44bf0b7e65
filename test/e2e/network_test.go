package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// nodeIP is the node's InternalIP.
func (e *env) nodeIP(t *testing.T, node string) string {
	t.Helper()
	n, err := e.client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	t.Fatalf("node %s has no InternalIP", node)
	return ""
}

// clientPod runs a pod on the reference node's pod network (not its host's), through which
// the tests reach Services as any pod of the cluster does.
func (e *env) clientPod(t *testing.T, ns string) string {
	t.Helper()
	ref := e.streamTargets(t)[2]
	pod := ref.pod("client", corev1.RestartPolicyAlways, "exec sleep 3600")
	pod.Spec.HostNetwork = false
	pod.Spec.Containers[0].Image = e.get(t, "INCLUSTER_IMAGE")
	pod = e.createPod(t, ns, pod)
	e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
	return pod.Name
}

// fetch has the client pod GET url until it answers want (kube-proxy and the EndpointSlice
// controller take a moment to follow a new Service), failing the test after 30 s.
func (e *env) fetch(t *testing.T, ns, client, url, want string) {
	t.Helper()
	e.waitFor(t, 30*time.Second, "GET "+url+" from a pod on the reference node to answer "+strconv.Quote(want), func(ctx context.Context) (bool, error) {
		out, err := e.kubectl(ctx, t, "", "-n", ns, "exec", client, "--", "incluster", "get", url)
		return out == want, err
	})
}

// A Deployment on a Satellite node behind Services: a pod on the reference node gets its
// answers by ClusterIP and by pod IP, the pod's IP and its EndpointSlice's address are the
// node's InternalIP, a Service whose targetPort the pod does not declare reaches it too (the
// relay follows the EndpointSlice), and a NodePort Service answers on the reference node's
// address. The host itself is never reached by the cluster: every connection is relayed by
// Satellite over its SSH connection.
func TestIntegrationClusterReachesPods(t *testing.T) {
	forEachTarget(t, func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		ctx := context.Background()
		declared, undeclared := portFor(tg, 18720), portFor(tg, 18730)
		labels := map[string]string{"app": "web"}
		tmpl := tg.pod("unused", corev1.RestartPolicyAlways, fmt.Sprintf(
			`mkdir -p /tmp/a /tmp/b && echo "declared on $NODE" > /tmp/a/index.html && echo "undeclared on $NODE" > /tmp/b/index.html && `+
				`httpd -p %d -h /tmp/b && exec httpd -f -p %d -h /tmp/a`, undeclared, declared))
		tmpl.Spec.HostNetwork = false // a pod as users write it; Satellite puts it on its node's address
		c := &tmpl.Spec.Containers[0]
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: declared}}
		c.Env = []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}
		one := int32(1)
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl.Spec}}}
		if _, err := e.client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		svc := func(name string, typ corev1.ServiceType, port int32, target intstr.IntOrString) *corev1.Service {
			s, err := e.client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.ServiceSpec{Type: typ, Selector: labels, Ports: []corev1.ServicePort{{Port: port, TargetPort: target}}}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		web := svc("web", corev1.ServiceTypeClusterIP, 80, intstr.FromString("http"))
		other := svc("web-undeclared", corev1.ServiceTypeNodePort, 81, intstr.FromInt32(undeclared))
		client := e.clientPod(t, ns)

		nodeIP := e.nodeIP(t, tg.node)
		var pod corev1.Pod
		e.waitFor(t, 90*time.Second, "the web pod running on "+tg.node, func(ctx context.Context) (bool, error) {
			list, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(list.Items) != 1 {
				return false, err
			}
			pod = list.Items[0]
			return running(&pod), nil
		})
		if pod.Status.PodIP != nodeIP || pod.Status.HostIP != nodeIP {
			t.Errorf("pod IP %q, host IP %q: want the node's InternalIP %s", pod.Status.PodIP, pod.Status.HostIP, nodeIP)
		}
		e.waitFor(t, 30*time.Second, "the web Service's EndpointSlice to hold the node's InternalIP", func(ctx context.Context) (bool, error) {
			return sliceHolds(ctx, e, ns, "web", nodeIP, declared)
		})

		want := "declared on " + tg.node + "\n"
		e.fetch(t, ns, client, fmt.Sprintf("http://%s:80/", web.Spec.ClusterIP), want)
		e.fetch(t, ns, client, fmt.Sprintf("http://%s:%d/", nodeIP, declared), want)
		e.fetch(t, ns, client, fmt.Sprintf("http://%s:81/", other.Spec.ClusterIP), "undeclared on "+tg.node+"\n")

		nodePort := fmt.Sprintf("http://%s/", net.JoinHostPort(e.get(t, "REFERENCE_NODE_IP"), strconv.Itoa(int(other.Spec.Ports[0].NodePort))))
		e.waitFor(t, 30*time.Second, "the NodePort Service to answer on the reference node's address ("+nodePort+")", func(ctx context.Context) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			body, err := httpGet(ctx, nodePort)
			return string(body) == "undeclared on "+tg.node+"\n", err
		})
	})
}

func sliceHolds(ctx context.Context, e *env, ns, service, ip string, port int32) (bool, error) {
	slices, err := e.client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return false, err
	}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			ready := ep.Conditions.Ready != nil && *ep.Conditions.Ready
			for _, a := range ep.Addresses {
				for _, p := range s.Ports {
					if a == ip && ready && p.Port != nil && *p.Port == port {
						return true, nil
					}
				}
			}
		}
	}
	return false, nil
}

// Two pods on one node that declare the same port: the later one is refused at admission, as
// the kubelet refuses two hostNetwork pods on one port (nodeName set, past the scheduler's
// own check), with the kubelet's reason, message and event.
func TestIntegrationPortConflictRefused(t *testing.T) {
	e := loadEnv(t)
	seen := differential(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		port := portFor(tg, 18740)
		mk := func(name string) *corev1.Pod {
			p := tg.pod(name, corev1.RestartPolicyNever, fmt.Sprintf("exec httpd -f -p %d -h /tmp", port))
			p.Spec.NodeName, p.Spec.NodeSelector = tg.node, nil
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port}}
			return p
		}
		first := e.createPod(t, ns, mk("first"))
		e.waitPod(t, ns, first.Name, 90*time.Second, "running", running)
		second := e.createPod(t, ns, mk("second"))
		got := e.waitPod(t, ns, second.Name, 60*time.Second, "refused", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		ev := e.waitEvent(t, ns, second.Name, "NodePorts", "", 30*time.Second)
		return fmt.Sprintf("phase=%s reason=%s message=%s\nevent %s %s: %s", got.Status.Phase, got.Status.Reason, got.Status.Message, ev.Type, ev.Reason, ev.Message)
	})
	compareWithKubelet(t, seen)
	if got := seen["containerd2"]; got != "" && !strings.Contains(got, "reason=NodePorts") {
		t.Errorf("Satellite did not refuse the second pod as the kubelet does:\n%s", got)
	}
}

// A pod on a Satellite node is on the cluster's network as a pod on the reference node is:
// its resolv.conf is the kubelet's for ClusterFirst, it resolves the kubernetes Service, a
// Service by its short, namespaced and full names and a headless Service (CoreDNS, over UDP
// and TCP), reaches an HTTP Service and a UDP echo Service backed by the reference node, and
// uses the API through the kubernetes Service with client-go's in-cluster configuration. The
// host itself cannot reach the cluster (its firewall drops it): all of it goes through
// Satellite's tunnel. On the containerd 2.x node, the one whose Satellite routes the host.
func TestIntegrationPodsReachCluster(t *testing.T) {
	e := loadEnv(t)
	targets := e.streamTargets(t)
	seen := differential(t, e, []target{targets[0], targets[2]}, func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		ctx := context.Background()
		ref := targets[2]
		backend := ref.pod("backend", corev1.RestartPolicyAlways,
			`mkdir -p /tmp/w && echo backend > /tmp/w/index.html && httpd -p 8080 -h /tmp/w && exec incluster udp-echo :9000`)
		backend.Spec.HostNetwork = false
		backend.Labels = map[string]string{"app": "backend"}
		backend.Spec.Containers[0].Image = e.get(t, "INCLUSTER_IMAGE")
		backend = e.createPod(t, ns, backend)
		for _, s := range []*corev1.Service{
			{ObjectMeta: metav1.ObjectMeta{Name: "backend"}, Spec: corev1.ServiceSpec{Selector: backend.Labels, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}, {Name: "echo", Port: 9000, Protocol: corev1.ProtocolUDP}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "backend-headless"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: backend.Labels,
				Ports: []corev1.ServicePort{{Port: 8080}}}},
		} {
			if _, err := e.client.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		backend = e.waitPod(t, ns, backend.Name, 90*time.Second, "running", running)
		svc, err := e.client.CoreV1().Services(ns).Get(ctx, "backend", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.waitFor(t, 30*time.Second, "the backend Service's EndpointSlice", func(ctx context.Context) (bool, error) {
			return sliceHolds(ctx, e, ns, "backend", backend.Status.PodIP, 8080)
		})
		script := `cat /etc/resolv.conf; incluster resolve kubernetes.default backend backend.$NS backend.$NS.svc.cluster.local backend-headless; ` +
			// kube-proxy follows a new Service within a second or so: a few tries, on both nodes.
			`for i in 1 2 3 4 5 6 7 8 9 10; do incluster get http://backend/ 2>/dev/null && break; sleep 1; done; ` +
			`for i in 1 2 3 4 5; do incluster udp backend:9000 hello 2>/dev/null && break; done; exec incluster`
		client := tg.pod("client", corev1.RestartPolicyNever, script)
		client.Spec.HostNetwork = false
		client.Spec.Containers[0].Image = e.get(t, "INCLUSTER_IMAGE")
		client.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NS", Value: ns}}
		client = e.createPod(t, ns, client)
		out := e.runToLogs(t, ns, client)
		return strings.NewReplacer(ns, "<ns>", svc.Spec.ClusterIP, "<backend-ip>", backend.Status.PodIP, "<backend-pod-ip>").Replace(out)
	})
	compareWithKubelet(t, seen)
	want := "search <ns>.svc.cluster.local svc.cluster.local cluster.local"
	if got := seen["containerd2"]; !strings.Contains(got, want) || !strings.Contains(got, "backend: <backend-ip>\n") ||
		!strings.Contains(got, "echo:hello\n") || !strings.Contains(got, "user system:serviceaccount:<ns>:default") {
		t.Errorf("a pod on the Satellite node, on the cluster's network:\n%s", got)
	}
}

// The host itself reaches nothing of the cluster (its firewall, as a rented host's network):
// what its pods reach goes through Satellite's tunnel, which routes the cluster's ranges and
// nothing else.
func TestIntegrationHostReachesClusterOnlyThroughTunnel(t *testing.T) {
	e := loadEnv(t)
	tg := e.targets(t)[0]
	h := e.host(t, tg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Output(ctx, fmt.Sprintf("busybox nc -w 2 %s 6443 </dev/null && echo reached || echo dropped; ip -o route show",
		e.get(t, "REFERENCE_NODE_IP")))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if !strings.HasPrefix(got, "dropped\n") {
		t.Errorf("the host reached the API server directly:\n%s", got)
	}
	var tunnelRoutes []string
	for _, l := range strings.Split(got, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "dev" && strings.HasPrefix(f[2], "tun") && !strings.Contains(l, "proto kernel") {
			tunnelRoutes = append(tunnelRoutes, f[0])
		}
	}
	if want := "10.96.0.0/16 10.214.0.0/24"; strings.Join(tunnelRoutes, " ") != want && strings.Join(tunnelRoutes, " ") != "10.214.0.0/24 10.96.0.0/16" {
		t.Errorf("routes into the tunnel on the host: %v, want exactly %s:\n%s", tunnelRoutes, want, got)
	}
}

// nodeCondition waits until the node's condition of type typ has status, and returns its
// reason and message.
func (e *env) nodeCondition(t *testing.T, node string, typ corev1.NodeConditionType, status corev1.ConditionStatus, timeout time.Duration) string {
	t.Helper()
	var why string
	e.waitFor(t, timeout, fmt.Sprintf("node %s %s=%s", node, typ, status), func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == typ {
				why = c.Reason + ": " + c.Message
				return c.Status == status, nil
			}
		}
		return false, nil
	})
	return why
}

// A link cut takes the tunnel down with the SSH connection: the node's ClusterNetwork
// condition says so, and once the link is back Satellite opens a new tunnel by itself, with
// the host's routes moved to it: a pod that was running all along resolves and reaches the
// cluster again. The time from the link's return to the first answer is logged.
func TestIntegrationFaultTunnelLinkCut(t *testing.T) {
	e := loadEnv(t)
	f := e.faultHost(t)
	ns := e.namespace(t)
	pod := f.tg.pod("resolver", corev1.RestartPolicyAlways, "exec sleep 3600")
	pod.Spec.HostNetwork = false
	pod.Spec.Containers[0].Image = e.get(t, "INCLUSTER_IMAGE")
	pod = e.createPod(t, ns, pod)
	e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
	resolves := func(ctx context.Context) (bool, error) {
		out, err := e.kubectl(ctx, t, "", "-n", ns, "exec", pod.Name, "--", "incluster", "resolve", "kubernetes.default")
		return out == "kubernetes.default: 10.96.0.1\n", err
	}
	e.nodeCondition(t, f.tg.node, "ClusterNetwork", corev1.ConditionTrue, 60*time.Second)
	e.waitFor(t, 30*time.Second, "the pod to resolve kubernetes.default before the cut", resolves)

	f.link(t, "down")
	restored := false
	t.Cleanup(func() {
		if !restored {
			f.link(t, "up")
		}
	})
	why := e.nodeCondition(t, f.tg.node, "ClusterNetwork", corev1.ConditionFalse, 90*time.Second)
	t.Logf("during the cut: ClusterNetwork=False %s", why)
	f.link(t, "up")
	restored = true
	back := time.Now()
	// exec itself needs the SSH link, so this measures the tunnel and the link together.
	e.waitFor(t, 90*time.Second, "the pod to resolve kubernetes.default after the link returned", resolves)
	t.Logf("the pod resolved kubernetes.default again %.1fs after the link returned", time.Since(back).Seconds())
	why = e.nodeCondition(t, f.tg.node, "ClusterNetwork", corev1.ConditionTrue, 60*time.Second)
	t.Logf("after: ClusterNetwork=True %s", why)
}

// A UDP echo server on a Satellite node behind a Service answers a pod on the reference node,
// by ClusterIP and by pod IP, as one on the kubelet's node does: datagrams reach the host's
// pod through Satellite's tunnel (SSH has no datagram forwarding of its own).
func TestIntegrationUDPToPod(t *testing.T) {
	e := loadEnv(t)
	targets := e.streamTargets(t)
	seen := differential(t, e, []target{targets[0], targets[2]}, func(t *testing.T, e *env, tg target) string {
		ns := e.namespace(t)
		ctx := context.Background()
		port := portFor(tg, 18750)
		server := tg.pod("udp-echo", corev1.RestartPolicyAlways, fmt.Sprintf("exec incluster udp-echo :%d", port))
		server.Spec.HostNetwork = false
		server.Labels = map[string]string{"app": "udp-echo"}
		server.Spec.Containers[0].Image = e.get(t, "INCLUSTER_IMAGE")
		server.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "echo", ContainerPort: port, Protocol: corev1.ProtocolUDP}}
		server = e.createPod(t, ns, server)
		svc, err := e.client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "udp-echo"},
			Spec: corev1.ServiceSpec{Selector: server.Labels, Ports: []corev1.ServicePort{{Port: 5353, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("echo")}}}},
			metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		server = e.waitPod(t, ns, server.Name, 90*time.Second, "running", running)
		client := e.clientPod(t, ns)
		var out strings.Builder
		for _, addr := range []string{svc.Spec.ClusterIP + ":5353", fmt.Sprintf("%s:%d", server.Status.PodIP, port)} {
			var got string
			e.waitFor(t, 30*time.Second, "a UDP answer from "+addr, func(ctx context.Context) (bool, error) {
				o, err := e.kubectl(ctx, t, "", "-n", ns, "exec", client, "--", "incluster", "udp", addr, "hello")
				got = o
				return o == "echo:hello\n", err
			})
			fmt.Fprintf(&out, "%s: %s", strings.NewReplacer(svc.Spec.ClusterIP, "<cluster-ip>", server.Status.PodIP, "<pod-ip>", strconv.Itoa(int(port)), "<port>").Replace(addr), got)
		}
		return out.String()
	})
	compareWithKubelet(t, seen)
}
