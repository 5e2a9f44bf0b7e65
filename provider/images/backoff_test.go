package images

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// A container whose pull fails waits 10 s, doubling to 5 min, with the kubelet's
// ImagePullBackOff status and one BackOff event; the back-off starts over after twice the
// maximum without a failure, and when the pod is forgotten.
func TestPullBackOff(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	rec := record.NewFakeRecorder(100)
	cri := registryRuntime(&Credential{Username: "u", Password: "p"}) // refuses anonymous pulls
	m := New(Config{Runtime: cri, Secrets: secretMap{}, Recorder: rec, Clock: clk})
	m.records = newPullRecords(&memRecords{})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u"}}
	c := &corev1.Container{Name: "main", Image: "registry.example/m:1", ImagePullPolicy: corev1.PullAlways}
	ensure := func(waiting string) (time.Duration, *WaitingError) {
		t.Helper()
		wait, err := m.Ensure(context.Background(), pod, c, &runtimeapi.PodSandboxConfig{}, waiting)
		var we *WaitingError
		if !errors.As(err, &we) {
			t.Fatalf("Ensure: %v, want a waiting error", err)
		}
		return wait, we
	}
	if wait, we := ensure(""); wait != 10*time.Second || we.Reason != "ErrImagePull" || we.Message != "401 Unauthorized" {
		t.Fatalf("first failure: %v %q %q, want 10s ErrImagePull", wait, we.Reason, we.Message)
	}
	clk.Step(2 * time.Second)
	wait, we := ensure("ErrImagePull")
	if wait != 8*time.Second || we.Reason != "ImagePullBackOff" ||
		we.Message != `Back-off pulling image "registry.example/m:1": ErrImagePull: 401 Unauthorized` {
		t.Fatalf("in back-off: %v %q %q", wait, we.Reason, we.Message)
	}
	ensure("ImagePullBackOff") // no second BackOff event
	var backOffs int
	for _, ev := range events(rec) {
		if strings.HasPrefix(ev, "Normal BackOff ") {
			backOffs++
		}
	}
	if backOffs != 1 || len(pullAuths(cri)) != 1 {
		t.Errorf("%d BackOff events and %d pulls, want 1 and 1", backOffs, len(pullAuths(cri)))
	}
	clk.Step(8 * time.Second)
	for _, d := range []time.Duration{20, 40, 80, 160, 300, 300} {
		if wait, we := ensure("ImagePullBackOff"); wait != d*time.Second || we.Reason != "ErrImagePull" {
			t.Fatalf("pull after the back-off: %v %q, want %v ErrImagePull", wait, we.Reason, d*time.Second)
		}
		clk.Step(d * time.Second)
	}
	clk.Step(11 * time.Minute)
	if wait, _ := ensure("ImagePullBackOff"); wait != 10*time.Second {
		t.Errorf("after twice the maximum without a failure the back-off is %v, want 10s", wait)
	}
	m.Forget(pod.UID)
	if wait, we := ensure("ErrImagePull"); wait != 10*time.Second || we.Reason != "ErrImagePull" {
		t.Errorf("after Forget: %v %q, want a pull and 10s", wait, we.Reason)
	}
}
