package podworker

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/provider/network"
)

func portPod(name string, created time.Time, port int32) *corev1.Pod {
	p := fake.Pod(corev1.RestartPolicyAlways, nil, "main")
	p.Name, p.Namespace, p.UID = name, "ns", types.UID("uid-"+name)
	p.CreationTimestamp = metav1.NewTime(created)
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port}}
	return p
}

// The older of two pods that declare one port is admitted, whichever comes to a worker first;
// a pod admitted keeps its port from an older one that arrives later (the kubelet admits once).
func TestAdmitPorts(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	reserved := []network.Port{{Protocol: corev1.ProtocolTCP, Port: 10250}}
	w := newTestWorker(Config{NodeName: "n", ReservedPorts: reserved}, fake.NewHost(), fake.NewRuntime(), record.NewFakeRecorder(10), nil)
	older, newer := portPod("older", t0, 8080), portPod("newer", t0.Add(time.Second), 8080)
	w.store.put(newer)
	w.store.put(older)
	if reason, msg := w.admitPorts(newer); reason != network.ConflictReason || msg != network.ConflictMessage {
		t.Errorf("newer pod, first to a worker: %q %q; want it refused as the kubelet refuses a hostPort conflict", reason, msg)
	}
	w.store.setStatus(newer.UID, corev1.PodStatus{Phase: corev1.PodFailed}) // as reject publishes it
	if reason, _ := w.admitPorts(older); reason != "" {
		t.Errorf("older pod: refused with %q, want admitted", reason)
	}
	late := portPod("late", t0.Add(-time.Hour), 8080) // older than both, arriving after
	w.store.put(late)
	if reason, _ := w.admitPorts(late); reason != network.ConflictReason {
		t.Errorf("a pod arriving after one was admitted on its port: %q, want refused", reason)
	}
	w.store.setStatus(late.UID, corev1.PodStatus{Phase: corev1.PodFailed}) // as reject publishes it
	if reason, _ := w.admitPorts(older); reason != "" {
		t.Errorf("the admitted pod, synced again: refused with %q", reason)
	}
	own := portPod("own", t0, 10250)
	w.store.put(own)
	if reason, msg := w.admitPorts(own); reason != network.ConflictReason || msg == network.ConflictMessage {
		t.Errorf("a pod on Satellite's own port: %q %q, want refused with the port named", reason, msg)
	}
	// A finished pod frees its port.
	w.store.setStatus(older.UID, corev1.PodStatus{Phase: corev1.PodSucceeded})
	next := portPod("next", t0.Add(time.Minute), 8080)
	w.store.put(next)
	if reason, msg := w.admitPorts(next); reason != "" {
		t.Errorf("a pod on the port of a finished pod: %q %q, want admitted", reason, msg)
	}
}

// relaysRecorder records the ports set per owner.
type relaysRecorder struct{ set map[string][]network.Port }

func (r *relaysRecorder) Set(_ context.Context, owner string, ports []network.Port) error {
	if len(ports) == 0 {
		delete(r.set, owner)
	} else {
		r.set[owner] = ports
	}
	return nil
}
func (r *relaysRecorder) Remove(ctx context.Context, owner string) { _ = r.Set(ctx, owner, nil) }

func TestSyncPortsFollowsThePhase(t *testing.T) {
	w := newTestWorker(Config{NodeName: "n"}, fake.NewHost(), fake.NewRuntime(), record.NewFakeRecorder(10), nil)
	r := &relaysRecorder{set: map[string][]network.Port{}}
	w.ports = r
	pod := portPod("web", time.Unix(1700000000, 0), 80)
	w.store.put(pod)
	rec, _, _, _ := w.store.record(pod.UID)
	w.syncPorts(context.Background(), rec, pod.UID)
	if got := r.set[string(pod.UID)]; len(got) != 1 || got[0] != (network.Port{Protocol: corev1.ProtocolTCP, Port: 80}) {
		t.Fatalf("relayed %v for a running pod, want 80/TCP", got)
	}
	w.store.setStatus(pod.UID, corev1.PodStatus{Phase: corev1.PodFailed})
	w.syncPorts(context.Background(), rec, pod.UID)
	if got, ok := r.set[string(pod.UID)]; ok {
		t.Errorf("relayed %v for a finished pod, want none", got)
	}
}
