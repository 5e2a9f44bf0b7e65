package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// forEachTarget runs f as a parallel subtest for every Satellite node.
func forEachTarget(t *testing.T, f func(t *testing.T, e *env, tg target)) {
	e := loadEnv(t)
	runTargets(t, e, e.targets(t), f)
}

// A Deployment with the toleration and the node's labels lands on the Satellite node through
// the real scheduler, runs on the host, and leaves nothing there once deleted; a pod without
// the toleration is not placed there.
func TestIntegrationDeploymentOnSatelliteNode(t *testing.T) {
	forEachTarget(t, func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		tmpl := tg.pod("unused", corev1.RestartPolicyAlways, "echo line-one; echo line-two; echo line-three; exec sleep 3600")
		tmpl.Spec.NodeSelector["eks.amazonaws.com/compute-type"] = "fargate"
		tmpl.Spec.NodeSelector["type"] = "virtual-kubelet"
		replicas := int32(3)
		labels := map[string]string{"app": "hello"}
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "hello"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl.Spec},
			},
		}
		ctx := context.Background()
		if _, err := e.client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pods []corev1.Pod
		e.waitFor(t, 90*time.Second, "3 replicas running on "+tg.node, func(ctx context.Context) (bool, error) {
			list, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
			if err != nil {
				return false, err
			}
			n := 0
			for i := range list.Items {
				if running(&list.Items[i]) && list.Items[i].Spec.NodeName == tg.node {
					n++
				}
			}
			pods = list.Items
			return n == 3 && len(list.Items) == 3, nil
		})
		for i := range pods {
			e.mustHaveOnHost(t, h, &pods[i])
			if got, want := pods[i].Status.PodIP, e.nodeIP(t, tg.node); got != want {
				t.Errorf("pod %s IP = %q, want the node's InternalIP %s", pods[i].Name, got, want)
			}
		}
		logs := e.mustKubectl(t, "", "logs", "-n", ns, pods[0].Name)
		if logs != "line-one\nline-two\nline-three\n" {
			t.Errorf("kubectl logs = %q, want the three lines written", logs)
		}

		// Without the toleration the scheduler keeps the pod off the node.
		stray := tg.pod("no-toleration", corev1.RestartPolicyNever, "true")
		stray.Spec.Tolerations = nil
		e.createPod(t, ns, stray)
		p := e.waitPod(t, ns, stray.Name, 60*time.Second, "the scheduler to refuse it", func(p *corev1.Pod) bool {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					return true
				}
			}
			return false
		})
		if p.Spec.NodeName != "" {
			t.Errorf("pod without toleration was bound to %s", p.Spec.NodeName)
		}
		if !strings.Contains(podScheduledMessage(p), "untolerated taint") {
			t.Errorf("unschedulable message %q does not name the taint", podScheduledMessage(p))
		}

		if err := e.client.AppsV1().Deployments(ns).Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, pod := range pods {
			e.waitFor(t, 90*time.Second, "pod "+pod.Name+" gone", func(ctx context.Context) (bool, error) {
				_, err := e.client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
				return err != nil, nil
			})
			e.assertClean(t, h, ns, pod.Name, pod.UID)
		}
	})
}

func podScheduledMessage(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Message
		}
	}
	return ""
}

// Exit codes reach the pod status as under the kubelet: exit 3 is Failed with reason Error,
// exit 0 is Succeeded with reason Completed. Completed pods are removed from the host too.
func TestIntegrationExitCodes(t *testing.T) {
	forEachTarget(t, func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		cases := []struct {
			name   string
			script string
			phase  corev1.PodPhase
			code   int32
			reason string
		}{
			{name: "fails", script: "echo bye; exit 3", phase: corev1.PodFailed, code: 3, reason: "Error"},
			{name: "succeeds", script: "echo done", phase: corev1.PodSucceeded, code: 0, reason: "Completed"},
		}
		for _, c := range cases {
			e.createPod(t, ns, tg.pod(c.name, corev1.RestartPolicyNever, c.script))
		}
		for _, c := range cases {
			p := e.waitPod(t, ns, c.name, 60*time.Second, "phase "+string(c.phase), func(p *corev1.Pod) bool {
				return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
			})
			if p.Status.Phase != c.phase {
				t.Errorf("%s: phase %s, want %s", c.name, p.Status.Phase, c.phase)
			}
			st := p.Status.ContainerStatuses
			if len(st) != 1 || st[0].State.Terminated == nil {
				t.Fatalf("%s: container status %+v, want terminated", c.name, st)
			}
			term := st[0].State.Terminated
			if term.ExitCode != c.code || term.Reason != c.reason {
				t.Errorf("%s: exitCode %d reason %q, want %d %q", c.name, term.ExitCode, term.Reason, c.code, c.reason)
			}
			if !strings.HasPrefix(st[0].ContainerID, "containerd://") || term.FinishedAt.IsZero() {
				t.Errorf("%s: containerID %q finishedAt %v", c.name, st[0].ContainerID, term.FinishedAt)
			}
			e.deletePod(t, ns, c.name)
			e.assertClean(t, h, ns, c.name, p.UID)
		}
	})
}

// A bad image reference leaves the container waiting with the kubelet's reason and an event
// that names the image; deleting the pod leaves nothing on the host.
func TestIntegrationBadImage(t *testing.T) {
	forEachTarget(t, func(t *testing.T, e *env, tg target) {
		ns := e.namespace(t)
		h := e.host(t, tg)
		pod := tg.pod("bad-image", corev1.RestartPolicyAlways, "true")
		const image = "localhost/satellite/does-not-exist:1"
		pod.Spec.Containers[0].Image = image
		created := e.createPod(t, ns, pod)
		p := e.waitPod(t, ns, pod.Name, 60*time.Second, "an image pull error", func(p *corev1.Pod) bool {
			st := p.Status.ContainerStatuses
			return len(st) == 1 && st[0].State.Waiting != nil &&
				(st[0].State.Waiting.Reason == "ErrImagePull" || st[0].State.Waiting.Reason == "ImagePullBackOff")
		})
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", p.Status.Phase)
		}
		if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, image) {
			t.Errorf("waiting message %q does not name the image", msg)
		}
		e.waitFor(t, 30*time.Second, "a Failed event naming the image", func(ctx context.Context) (bool, error) {
			evs, err := e.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
			if err != nil {
				return false, err
			}
			for _, ev := range evs.Items {
				if ev.Reason == "Failed" && ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Message, fmt.Sprintf("%q", image)) {
					return true, nil
				}
			}
			return false, nil
		})
		e.deletePod(t, ns, pod.Name)
		e.assertClean(t, h, ns, pod.Name, created.UID)
	})
}
