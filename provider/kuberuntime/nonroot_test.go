package kuberuntime

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestImageUser(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		img      *runtimeapi.Image
		uid      *int64
		username string
	}{
		{img: &runtimeapi.Image{Uid: &runtimeapi.Int64Value{Value: 1000}}, uid: ptr.To[int64](1000)},
		{img: &runtimeapi.Image{Uid: &runtimeapi.Int64Value{Value: 0}}, uid: ptr.To[int64](0)},
		{img: &runtimeapi.Image{Username: "nobody"}, username: "nobody"},
		{img: &runtimeapi.Image{}, uid: ptr.To[int64](0)}, // no user: root
		{img: nil, uid: ptr.To[int64](0)},
	} {
		uid, name := ImageUser(tt.img)
		if name != tt.username || (uid == nil) != (tt.uid == nil) || uid != nil && *uid != *tt.uid {
			t.Errorf("ImageUser(%v) = %v %q, want %v %q", tt.img, uid, name, tt.uid, tt.username)
		}
	}
}

func TestVerifyRunAsNonRoot(t *testing.T) {
	t.Parallel()
	const who = `(pod: "web-0_shop(u-1)", container: main)`
	yes, no := ptr.To(true), ptr.To(false)
	for _, tt := range []struct {
		name          string
		pod, ctr      *corev1.SecurityContext // pod's RunAsNonRoot and RunAsUser only
		uid           *int64
		username      string
		wantImageUser bool
		want          string
	}{
		{name: "not asked", uid: ptr.To[int64](0)},
		{name: "allowed to be root", ctr: &corev1.SecurityContext{RunAsNonRoot: no}, uid: ptr.To[int64](0)},
		{name: "image root", ctr: &corev1.SecurityContext{RunAsNonRoot: yes}, uid: ptr.To[int64](0), wantImageUser: true,
			want: "container has runAsNonRoot and image will run as root " + who},
		{name: "from the pod", pod: &corev1.SecurityContext{RunAsNonRoot: yes}, uid: ptr.To[int64](0), wantImageUser: true,
			want: "container has runAsNonRoot and image will run as root " + who},
		{name: "container lifts the pod's", pod: &corev1.SecurityContext{RunAsNonRoot: yes}, ctr: &corev1.SecurityContext{RunAsNonRoot: no}, uid: ptr.To[int64](0)},
		{name: "image non-root", ctr: &corev1.SecurityContext{RunAsNonRoot: yes}, uid: ptr.To[int64](1000), wantImageUser: true},
		{name: "image user by name", ctr: &corev1.SecurityContext{RunAsNonRoot: yes}, username: "app", wantImageUser: true,
			want: "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root " + who},
		{name: "runAsUser non-root", ctr: &corev1.SecurityContext{RunAsNonRoot: yes, RunAsUser: ptr.To[int64](1000)}, uid: ptr.To[int64](0)},
		{name: "pod runAsUser non-root", pod: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}, ctr: &corev1.SecurityContext{RunAsNonRoot: yes}, uid: ptr.To[int64](0)},
		{name: "runAsUser root", ctr: &corev1.SecurityContext{RunAsNonRoot: yes, RunAsUser: ptr.To[int64](0)},
			want: "container's runAsUser breaks non-root policy " + who},
		{name: "image user out of range", ctr: &corev1.SecurityContext{RunAsNonRoot: yes}, uid: ptr.To[int64](1 << 32), wantImageUser: true,
			want: `container has runAsNonRoot and image has an invalid user id (4294967296). (Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive ` + who},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "u-1"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", SecurityContext: tt.ctr}}}}
		if tt.pod != nil {
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: tt.pod.RunAsNonRoot, RunAsUser: tt.pod.RunAsUser}
		}
		c := &pod.Spec.Containers[0]
		if got := NeedsImageUser(pod, c); got != tt.wantImageUser {
			t.Errorf("%s: needs the image's user = %v", tt.name, got)
		}
		err := VerifyRunAsNonRoot(pod, c, tt.uid, tt.username)
		if got := errString(err); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
