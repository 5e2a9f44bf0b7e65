package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A pod on a Satellite node uses the Kubernetes API as in-cluster clients do (client-go's
// rest.InClusterConfig with the pod's service account token and CA): its
// KUBERNETES_SERVICE_HOST and _PORT name the kubernetes Service's ClusterIP, as on any node,
// which the host reaches through Satellite's tunnel (the host itself cannot reach the API:
// its firewall drops it). The API authenticates the pod as its service account. On the
// containerd 2.x node alone: the other Satellite drives the same host without a tunnel.
func TestIntegrationPodReachesAPI(t *testing.T) {
	e := loadEnv(t)
	runTargets(t, e, e.targets(t)[:1], func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		pod := tg.pod("incluster", corev1.RestartPolicyNever, "")
		pod.Spec.Containers[0].Image = e.get(t, "INCLUSTER_IMAGE")
		pod.Spec.Containers[0].Command = []string{"/bin/sh", "-c", `echo "env $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; exec /bin/incluster`}
		pod = e.createPod(t, ns, pod)
		got := e.waitPod(t, ns, pod.Name, 90*time.Second, "finished", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		})
		out := e.mustKubectl(t, "", "logs", "-n", ns, pod.Name)
		t.Logf("%s: %s", tg.name, out)
		endpoint := e.get(t, "KUBERNETES_SERVICE")
		want := fmt.Sprintf("env %s\napi https://%s\nuser system:serviceaccount:%s:default\n", endpoint, endpoint, ns)
		if got.Status.Phase != corev1.PodSucceeded || out != want {
			host, port, _ := net.SplitHostPort(endpoint)
			t.Errorf("phase %s, log:\n%s\nwant:\n%s(the API at %s port %s, as the pod's service account)", got.Status.Phase, out, want, host, port)
		}
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
}
