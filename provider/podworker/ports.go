package podworker

import (
	"context"
	"fmt"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/network"
)

// noRelays serves when no port is relayed (the pods keep the host's address).
type noRelays struct{}

func (noRelays) Set(context.Context, string, []network.Port) error { return nil }
func (noRelays) Remove(context.Context, string)                    {}

// admitPorts refuses a pod that declares a port a pod admitted before it holds, or one of
// Satellite's own, as the kubelet refuses a hostPort conflict: the pods of a Satellite node
// share one network, the host's. Which pod came first is decided by creation time, not by
// which worker ran first, so a restart of Satellite admits the same pods again.
//
// A pod's ports are admitted once: the pods that hold ports against it are those admitted
// already and the older ones not decided yet.
func (p *Worker) admitPorts(pod *corev1.Pod) (reason, message string) {
	if len(network.PodPorts(pod)) == 0 || p.store.portsAdmittedFor(pod.UID) {
		return "", ""
	}
	port, by, conflict := network.Conflict(pod, p.store.portHolders(pod, holdsPorts), p.cfg.ReservedPorts)
	if !conflict {
		p.store.admitPorts(pod.UID)
		return "", ""
	}
	if by == "Satellite's own" {
		return network.ConflictReason, fmt.Sprintf("%s: port %s is Satellite's own on the node's address", network.ConflictMessage, port)
	}
	return network.ConflictReason, network.ConflictMessage
}

// holdsPorts tells whether a pod keeps its ports from later pods: one that may run (not
// refused at admission) and has not finished.
func holdsPorts(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	reason, _ := kuberuntime.Admit(pod, false)
	return reason == ""
}

// syncPorts has an admitted pod's declared ports relayed from the node's address while it
// runs, and no longer once it has finished. A port that cannot be listened on gives a Warning
// event (once per message).
func (p *Worker) syncPorts(ctx context.Context, rec *podRecord, uid types.UID) {
	_, pod, _, _ := p.store.record(uid)
	if pod == nil {
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		p.ports.Remove(ctx, string(uid))
		return
	}
	err := p.ports.Set(ctx, string(uid), network.PodPorts(pod))
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != rec.relayError && msg != "" {
		log.G(ctx).WithError(err).Warn("cannot relay the pod's ports from the node's address")
		p.recorder.Event(pod, corev1.EventTypeWarning, "FailedToRelayPorts", "The cluster cannot reach the pod on some of its ports: "+msg)
	}
	rec.relayError = msg
}
