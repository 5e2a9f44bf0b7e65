package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// plantedSecret is a value that must reach the pod and nowhere else: not Satellite's log, not
// an event, not a file left on the host.
const plantedSecret = "s3cr3t-planted-7f1d2c"

// volumesPod mounts every kind of volume Satellite serves and prints what a user would check.
func volumesPod(tg target, hostDir string) *corev1.Pod {
	pod := tg.pod("volumes", corev1.RestartPolicyNever, `
set -u
echo "secret=$(cat /etc/secret/password) mode=$(stat -L -c %a /etc/secret/password)"
echo "secret-fs=$(awk '$2=="/etc/secret"{print $3}' /proc/mounts) ro=$(awk '$2=="/etc/secret"{print $4}' /proc/mounts | cut -d, -f1)"
echo "env-secret=$FROM_SECRET"
echo "config=$(cat /etc/config/greeting) item=$(cat /etc/config-items/renamed/greet.txt) mode=$(stat -L -c %a /etc/config-items/renamed/greet.txt)"
echo "subpath=$(cat /etc/greeting-only)"
echo "downward-name=$(cat /etc/podinfo/name) labels=$(cat /etc/podinfo/labels | tr '\n' ' ')"
echo "cpu-limit-millis=$(cat /etc/podinfo/cpu)"
echo "projected=$(cat /var/run/projected/greeting) ns=$(cat /var/run/projected/namespace) token=$(test -s /var/run/projected/token && echo present)"
echo "tmp-fs=$(awk '$2=="/scratch-mem"{print $3}' /proc/mounts)"
echo hello > /scratch-disk/f && echo "emptydir=$(cat /scratch-disk/f)"
echo hello > /scratch-mem/f && echo "memdir=$(cat /scratch-mem/f)"
echo "hostpath=$(test -d /host-dir && echo dir) $(cat /host-dir/marker 2>/dev/null || echo nomarker)"
if (echo x > /etc/secret/new) 2>/dev/null; then echo secret-writable; else echo secret-readonly; fi
echo "id=$(id -u):$(id -g) groups=$(id -G)"
echo "cgroup-cpu=$(cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) cgroup-memory=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
exec sleep 3600
`)
	optional := true
	pod.Labels = map[string]string{"app": "volumes", "tier": "e2e"}
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)}
	c := &pod.Spec.Containers[0]
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	c.Env = []corev1.EnvVar{{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}}}
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "secret", MountPath: "/etc/secret"},
		{Name: "config", MountPath: "/etc/config"},
		{Name: "config-items", MountPath: "/etc/config-items"},
		{Name: "config", MountPath: "/etc/greeting-only", SubPath: "greeting"},
		{Name: "podinfo", MountPath: "/etc/podinfo"},
		{Name: "projected", MountPath: "/var/run/projected"},
		{Name: "scratch-disk", MountPath: "/scratch-disk"},
		{Name: "scratch-mem", MountPath: "/scratch-mem"},
		{Name: "host-dir", MountPath: "/host-dir", ReadOnly: true},
		{Name: "missing-ok", MountPath: "/etc/missing"},
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr.To[int32](0o400)}}},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
		{Name: "config-items", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"},
			Items: []corev1.KeyToPath{{Key: "greeting", Path: "renamed/greet.txt", Mode: ptr.To[int32](0o600)}}}}},
		{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "main", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
		}}}},
		{Name: "projected", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "satellite-e2e", ExpirationSeconds: ptr.To[int64](600)}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}},
		{Name: "scratch-disk", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "scratch-mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("16Mi"))}}},
		{Name: "host-dir", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirOrCreate}}},
		{Name: "missing-ok", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "does-not-exist", Optional: &optional}}},
	}
	return pod
}

// TestIntegrationVolumes runs the same pod with every volume kind Satellite serves on the
// reference kubelet and on the Satellite nodes and compares what the pod sees; then checks
// the token is a valid one of the pod's service account, that a ConfigMap change reaches the
// running pod, and that deleting the pod leaves nothing on the host and the planted secret
// nowhere in Satellite's log.
func TestIntegrationVolumes(t *testing.T) {
	e := loadEnv(t)
	var mu sync.Mutex
	seen := map[string]string{}
	onTargets(t, e, e.streamTargets(t), func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		ctx := context.Background()
		if _, err := e.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
			StringData: map[string]string{"password": plantedSecret}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"},
			Data: map[string]string{"greeting": "hello-v1"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		hostDir, err := os.MkdirTemp("", "satellite-hostpath-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(hostDir) })
		if err := os.WriteFile(hostDir+"/marker", []byte("from-the-host"), 0o644); err != nil {
			t.Fatal(err)
		}
		pod := e.createPod(t, ns, volumesPod(tg, hostDir))
		pod = e.waitPod(t, ns, pod.Name, 90*time.Second, "running", running)
		var out string
		e.waitFor(t, 30*time.Second, "the pod's report", func(ctx context.Context) (bool, error) {
			var err error
			out, err = e.kubectl(ctx, t, "", "-n", ns, "logs", pod.Name)
			return strings.Contains(out, "id="), err
		})
		// The namespace differs per target; the rest must be identical.
		out = strings.ReplaceAll(out, ns, "<ns>")
		mu.Lock()
		seen[tg.name] = out
		mu.Unlock()
		for _, want := range []string{"secret=" + plantedSecret + " mode=440", "secret-fs=tmpfs ro=ro", "env-secret=" + plantedSecret,
			"config=hello-v1 item=hello-v1 mode=640", "subpath=hello-v1", "downward-name=volumes", `labels=app="volumes" tier="e2e"`,
			"cpu-limit-millis=250", "projected=hello-v1 ns=<ns> token=present", "tmp-fs=tmpfs", "emptydir=hello", "memdir=hello",
			"hostpath=dir from-the-host", "secret-readonly", "groups=0 2000", "cgroup-memory=67108864"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: pod output lacks %q:\n%s", tg.name, want, out)
			}
		}

		// /runningpods/ names the pod, and shows no env value resolved from the Secret.
		reader := e.saToken(t, ns, "proxy-reader", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"get"}}})
		n, err := e.client.CoreV1().Nodes().Get(ctx, tg.node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("GET", fmt.Sprintf("https://%s:%d/runningpods/", n.Status.Addresses[0].Address, n.Status.DaemonEndpoints.KubeletEndpoint.Port), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+reader)
		resp, err := e.kubeletClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// (The reference kubelet answers from its runtime cache, which may not list the pod yet.)
		named := tg.reference || strings.Contains(string(body), `"volumes"`)
		if resp.StatusCode != 200 || !named || strings.Contains(string(body), plantedSecret) {
			t.Errorf("%s: /runningpods/: HTTP %d, names the pod: %v, carries the secret: %v", tg.name, resp.StatusCode,
				strings.Contains(string(body), `"volumes"`), strings.Contains(string(body), plantedSecret))
		}

		// The token authenticates as the pod's service account, for the audience asked.
		tok := e.mustKubectl(t, "", "-n", ns, "exec", pod.Name, "--", "cat", "/var/run/projected/token")
		tr, err := e.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
			Token: tok, Audiences: []string{"satellite-e2e"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Status.Authenticated || tr.Status.User.Username != "system:serviceaccount:"+ns+":default" {
			t.Errorf("%s: TokenReview of the mounted token: authenticated=%v user=%q error=%q", tg.name, tr.Status.Authenticated, tr.Status.User.Username, tr.Status.Error)
		}

		// A ConfigMap change reaches the running pod (within the kubelet's sync period).
		cm, err := e.client.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["greeting"] = "hello-v2"
		if _, err := e.client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		e.waitFor(t, 150*time.Second, "the ConfigMap update in the pod", func(ctx context.Context) (bool, error) {
			out, err := e.kubectl(ctx, t, "", "-n", ns, "exec", pod.Name, "--", "cat", "/etc/config/greeting", "/var/run/projected/greeting")
			return out == "hello-v2hello-v2", err
		})
		t.Logf("%s: ConfigMap update visible in the pod after %v", tg.name, time.Since(start).Round(time.Second))
		if out := e.mustKubectl(t, "", "-n", ns, "exec", pod.Name, "--", "cat", "/etc/greeting-only"); out != "hello-v1" {
			t.Errorf("%s: a subPath mount follows updates (%q); the kubelet's does not", tg.name, out)
		}

		h := e.host(t, tg)
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, pod.UID)
	})
	if t.Failed() {
		return
	}
	ref := seen["kubelet"]
	for name, out := range seen {
		if out != ref {
			t.Errorf("%s saw\n%s\nthe reference kubelet saw\n%s", name, out, ref)
		}
	}
	// The planted secret appears in no log line of Satellite's.
	for _, k := range []string{"SATELLITE_LOG"} {
		if out, _ := exec.Command("grep", "-c", plantedSecret, e.get(t, k)).Output(); strings.TrimSpace(string(out)) != "0" {
			t.Errorf("the planted secret is in %s (%s lines)", e.get(t, k), strings.TrimSpace(string(out)))
		}
	}
}
