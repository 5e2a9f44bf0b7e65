package main

import (
	"context"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// sliceSyncer is told of every EndpointSlice of the cluster, by namespace/name (nil: deleted):
// the provider relays the ports those on its node target.
type sliceSyncer func(key string, slice *discoveryv1.EndpointSlice)

// syncSlices hands EndpointSlices to the provider, with the daemon's logger.
func (d *daemon) syncSlices(ctx context.Context) sliceSyncer {
	return func(key string, slice *discoveryv1.EndpointSlice) { d.p.SyncEndpointSlice(ctx, key, slice) }
}

// sliceHandler is the EndpointSlice informer's handler around sync.
func sliceHandler(sync sliceSyncer) cache.ResourceEventHandler {
	put := func(obj any) {
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
			sync(s.Namespace+"/"+s.Name, s)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    put,
		UpdateFunc: func(_, obj any) { put(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				sync(d.Key, nil)
				return
			}
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
				sync(s.Namespace+"/"+s.Name, nil)
			}
		},
	}
}
