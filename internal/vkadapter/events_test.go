package vkadapter

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
)

func TestPodControllerEvents(t *testing.T) {
	t.Parallel()
	fake := record.NewFakeRecorder(10)
	r := podControllerEvents{fake}
	pod := &corev1.Pod{}
	r.Event(pod, corev1.EventTypeNormal, "ProviderCreateSuccess", "Create pod in provider successfully")
	r.Eventf(pod, corev1.EventTypeNormal, "ProviderDeleteSuccess", "Delete pod in provider successfully")
	r.Event(pod, corev1.EventTypeWarning, "ProviderCreateFailed", "boom")
	close(fake.Events)
	var got []string
	for e := range fake.Events {
		got = append(got, e)
	}
	if len(got) != 1 || got[0] != "Warning ProviderCreateFailed boom" {
		t.Errorf("events %q: want only the failure", got)
	}
}
