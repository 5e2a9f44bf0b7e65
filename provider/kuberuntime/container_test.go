package kuberuntime

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// Every container loses NET_RAW unless it asks for it: all pods share the host's network.
func TestNetRawDropped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		sc       *corev1.SecurityContext
		add      []string
		drop     []string
		privileg bool
	}{
		{name: "no security context", drop: []string{"NET_RAW"}},
		{name: "other capabilities", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"CHOWN"}}},
			add: []string{"NET_ADMIN"}, drop: []string{"CHOWN", "NET_RAW"}},
		{name: "adds NET_RAW", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}}}, add: []string{"NET_RAW"}},
		{name: "adds ALL", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"ALL"}}}, add: []string{"ALL"}},
		{name: "drops ALL", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}, drop: []string{"ALL"}},
		{name: "privileged keeps every capability", sc: &corev1.SecurityContext{Privileged: ptr.To(true)}, drop: []string{"NET_RAW"}, privileg: true},
	} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", SecurityContext: tc.sc}}}}
		sc := securityContext(pod, &pod.Spec.Containers[0])
		want := &runtimeapi.Capability{AddCapabilities: tc.add, DropCapabilities: tc.drop}
		if !reflect.DeepEqual(sc.Capabilities, want) || sc.Privileged != tc.privileg {
			t.Errorf("%s: capabilities %v, privileged %v; want %v", tc.name, sc.Capabilities, sc.Privileged, want)
		}
	}
}
