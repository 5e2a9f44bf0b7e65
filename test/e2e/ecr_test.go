package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/satellite-vk/satellite/test/ecrstub"
)

// A pod whose image is in a private ECR registry runs without an image pull secret: Satellite
// gets the registry's credentials from ecr:GetAuthorizationToken, through the real SDK client
// against a stand-in of ECR's API (--ecr-endpoint), and hands them to the host's containerd,
// which pulls from the environment's registry (the ECR name is mirrored there by hosts.toml,
// and the registry's user AWS has the stand-in's password). A second pod reuses the token
// (one call for the region). When the token is due for renewal and ECR refuses Satellite's
// identity, the pull fails with an ErrImagePull whose message names the IAM action to allow.
func TestIntegrationECRPull(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	const lifetime = 12 * time.Second // renewed after 80 %, so the refusal comes into play
	stub := ecrstub.New(t, "AWS", e.get(t, "ECR_PASSWORD"), lifetime)
	hosts := filepath.Join(filepath.Dir(e.get(t, "KUBECONFIG")), "registry", "hosts")
	l := newGPULabWith(t, e, "satellite-ecr-"+ns[len(ns)-6:], false, func(*gpuLab) string {
		return "[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"" + hosts + "\"\n"
	})
	l.env = []string{"AWS_ACCESS_KEY_ID=AKIASATELLITETEST", "AWS_SECRET_ACCESS_KEY=not-a-secret", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
	l.args = []string{"--ecr-endpoint", stub.URL}
	l.startSatellite()
	l.waitGPUNode()
	tg := target{node: l.node, taints: []string{"virtual-kubelet.io/provider=satellite:NoSchedule"}}
	image := e.get(t, "ECR_REGISTRY") + "/satellite/private:1.0"

	run := func(name string) *corev1.Pod {
		pod := tg.pod(name, corev1.RestartPolicyNever, "echo from-ecr")
		pod.Spec.Containers[0].Image = image
		pod.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
		return e.createPod(t, ns, pod)
	}
	for _, name := range []string{"first", "second"} {
		run(name)
		e.waitPod(t, ns, name, 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		if out := e.mustKubectl(t, "", "logs", "-n", ns, name); out != "from-ecr\n" {
			t.Errorf("%s: log %q", name, out)
		}
		ev := e.waitEvent(t, ns, name, "Pulled", "Successfully pulled image", 30*time.Second)
		t.Logf("%s: %s", name, describeEvent(ev))
	}
	reqs := stub.Requests()
	if len(reqs) != 1 || reqs[0].Region != "us-west-2" {
		t.Errorf("GetAuthorizationToken calls: %+v; want one, in us-west-2 (the registry's region)", reqs)
	}

	// The token is due for renewal, and ECR now refuses Satellite's identity.
	stub.AddFault(ecrstub.Fault{Times: 1000, Status: 400, Code: "AccessDeniedException",
		Message: "User: arn:aws:sts::111122223333:assumed-role/satellite is not authorized to perform: ecr:GetAuthorizationToken"})
	time.Sleep(time.Until(reqs[0].Time.Add(lifetime * 4 / 5)))
	run("refused")
	p := e.waitPod(t, ns, "refused", 90*time.Second, "ErrImagePull", func(p *corev1.Pod) bool {
		s := ctrStatus(p, "main")
		return s.State.Waiting != nil && (s.State.Waiting.Reason == "ErrImagePull" || s.State.Waiting.Reason == "ImagePullBackOff")
	})
	ev := e.waitEvent(t, ns, "refused", "Failed", "Failed to pull image", 30*time.Second)
	t.Logf("refused: waiting %s; event %s", ctrStatus(p, "main").State.Waiting.Reason, describeEvent(ev))
	if !strings.Contains(ev.Message, "not authorized (AccessDeniedException): allow ecr:GetAuthorizationToken") {
		t.Errorf("the Failed event does not say what to allow: %q", ev.Message)
	}
	if strings.Contains(ev.Message, e.get(t, "ECR_PASSWORD")) {
		t.Error("the event holds the registry password")
	}
	if b, err := os.ReadFile(l.satLog); err != nil || strings.Contains(string(b), e.get(t, "ECR_PASSWORD")) {
		t.Errorf("Satellite's debug log holds the registry password (or cannot be read: %v)", err)
	}
	for _, name := range []string{"first", "second", "refused"} {
		_ = e.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	}
	for _, name := range []string{"first", "second", "refused"} {
		e.deletePod(t, ns, name)
	}
	l.assertHostClean()
}
