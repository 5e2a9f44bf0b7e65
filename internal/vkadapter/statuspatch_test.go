package vkadapter

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// The patch takes the API's pod to the new status: a container that ran waiting now runs
// (the waiting state goes), a condition another controller set meanwhile stays, and the UID
// is a precondition.
func TestStatusPatch(t *testing.T) {
	t.Parallel()
	from := corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}
	to := corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true, State: corev1.ContainerState{
			Running: &corev1.ContainerStateRunning{StartedAt: metav1.Unix(100, 0)}}}}}
	patch, err := statusPatch(from, to, "uid-1")
	if err != nil {
		t.Fatal(err)
	}
	// The API's pod, as it is when the patch arrives: another controller has added a condition.
	api := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "uid-1"}, Status: *from.DeepCopy()}
	api.Status.Conditions = append(api.Status.Conditions, corev1.PodCondition{Type: "satellite.dev/gate", Status: corev1.ConditionTrue})
	cur, err := json.Marshal(api)
	if err != nil {
		t.Fatal(err)
	}
	out, err := strategicpatch.StrategicMergePatch(cur, patch, corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := *to.DeepCopy()
	want.Conditions = append(want.Conditions, corev1.PodCondition{Type: "satellite.dev/gate", Status: corev1.ConditionTrue})
	if !apiequality.Semantic.DeepEqual(got.Status, want) {
		t.Errorf("patched status\n%+v\nwant\n%+v\n(patch %s)", got.Status, want, patch)
	}
	var doc struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(patch, &doc); err != nil || doc.Metadata.UID != "uid-1" {
		t.Errorf("patch %s: want the pod's UID as a precondition", patch)
	}
}

// A condition turned True after the informer's copy fell behind the last status written: the
// patch is taken from the written one, so the reason it had while False goes.
func TestStatusPatchFromFreshestBase(t *testing.T) {
	t.Parallel()
	informer := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u", ResourceVersion: "10"},
		Status: corev1.PodStatus{Phase: corev1.PodPending}}
	written := informer.DeepCopy()
	written.ResourceVersion = "12"
	written.Status.Conditions = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
	sent := newSentStatuses()
	sent.put(written)
	base := sent.newer(informer)
	if base.ResourceVersion != "12" {
		t.Fatalf("base is resourceVersion %s, want the written pod's 12", base.ResourceVersion)
	}
	to := corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}}}
	patch, err := statusPatch(base.Status, to, "u")
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := json.Marshal(written)
	out, err := strategicpatch.StrategicMergePatch(cur, patch, corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if c := got.Status.Conditions; len(c) != 1 || c[0].Status != corev1.ConditionTrue || c[0].Reason != "" {
		t.Errorf("conditions after the patch: %+v, want ContainersReady True without a reason (patch %s)", c, patch)
	}
	// Once the informer has caught up, its copy is the base and the written one is dropped.
	informer.ResourceVersion = "12"
	if b := sent.newer(informer); b != informer {
		t.Error("the informer's copy at the same resourceVersion is not the base")
	}
	if b := sent.newer(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u", ResourceVersion: "11"}}); b.ResourceVersion != "11" {
		t.Error("the written pod was kept after the informer caught up")
	}
}
