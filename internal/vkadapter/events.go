package vkadapter

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
)

// podControllerEvents is the event recorder virtual-kubelet's pod controller gets: it drops
// the Normal events the controller records on every pod it hands to the provider
// (ProviderCreateSuccess, ProviderUpdateSuccess, ProviderDeleteSuccess), which no kubelet
// emits: a pod's events are the kubelet's (Pulled, Created, Started, Killing...), which
// Satellite records itself. Failures still pass.
type podControllerEvents struct{ record.EventRecorder }

// PodControllerEvents is r without the pod controller's Normal events no kubelet emits.
func PodControllerEvents(r record.EventRecorder) record.EventRecorder { return podControllerEvents{r} }

var quietReasons = map[string]bool{"ProviderCreateSuccess": true, "ProviderUpdateSuccess": true, "ProviderDeleteSuccess": true}

func (r podControllerEvents) Event(obj runtime.Object, eventtype, reason, message string) {
	if quietReasons[reason] {
		return
	}
	r.EventRecorder.Event(obj, eventtype, reason, message)
}

func (r podControllerEvents) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	if quietReasons[reason] {
		return
	}
	r.EventRecorder.Eventf(obj, eventtype, reason, format, args...)
}
