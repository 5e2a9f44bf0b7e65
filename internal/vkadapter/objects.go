package vkadapter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// Satellite reads the Secrets and ConfigMaps its pods name one at a time, with a GET each,
// cached for a short while: the kubelet's "Cache" change-detection strategy. virtual-kubelet's
// nodeutil would instead watch and hold every Secret and ConfigMap of the cluster (Helm's
// release Secrets included), which costs memory in proportion to the cluster and needs
// cluster-wide list and watch on Secrets. virtual-kubelet's pod controller still wants those
// informers, so they are made (cmd/satellite, as nodeutil would) but pointed at one name no
// object has, so they hold nothing (inertClient), and RBAC grants list and watch on that name
// only.

const (
	// objectTTL is how long an object read is used before it is read again: a change to a
	// Secret or ConfigMap reaches env of new containers and mounted files within it (plus
	// the volume refresh).
	objectTTL = 15 * time.Second
	// missingTTL is how long "not found" is believed: a pod waiting for its Secret starts
	// soon after the Secret is made.
	missingTTL = 2 * time.Second
	// objectGetTimeout bounds one GET.
	objectGetTimeout = 10 * time.Second
	// inertName names the one Secret and ConfigMap the node's informers may list and watch;
	// nothing is expected to be called so (it would be cached, and ignored).
	inertName = "satellite.invalid-name-never-used"
)

// objectCache answers Gets from the API, each answer kept for objectTTL (missingTTL for
// not found). Concurrent Gets of one object share one call. Other errors are not kept.
type objectCache[T any] struct {
	resource string // secret, configmap: as in the listers' not-found errors
	get      func(ctx context.Context, ns, name string) (T, error)
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]*cacheEntry[T]
	pruned  time.Time
}

type cacheEntry[T any] struct {
	done chan struct{} // closed once obj and err are set
	obj  T
	err  error
	at   time.Time
	// abandoned: the read failed because the caller that made it gave up.
	abandoned bool
}

func newObjectCache[T any](resource string, get func(ctx context.Context, ns, name string) (T, error)) *objectCache[T] {
	return &objectCache[T]{resource: resource, get: get, now: time.Now, entries: map[string]*cacheEntry[T]{}}
}

// Get returns the object: shared, not to be changed; a missing one is a NotFound error in
// the listers' words (`secret "creds" not found`). A read shared with a caller that gave up
// is made again for one that has not.
func (c *objectCache[T]) Get(ctx context.Context, ns, name string) (T, error) {
	for {
		e, mine := c.entry(ns, name)
		if mine {
			c.fill(ctx, e, ns, name)
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
		if !e.abandoned || ctx.Err() != nil {
			return e.obj, e.err
		}
	}
}

// entry returns the object's entry, fresh or being read; mine: a new one, for the caller to
// fill.
func (c *objectCache[T]) entry(ns, name string) (*cacheEntry[T], bool) {
	key := ns + "/" + name
	c.mu.Lock()
	now := c.now()
	c.prune(now)
	e, ok := c.entries[key]
	if ok {
		select {
		case <-e.done:
			ok = c.fresh(e, now)
		default: // being read: share it
		}
	}
	if !ok {
		e = &cacheEntry[T]{done: make(chan struct{})}
		c.entries[key] = e
	}
	c.mu.Unlock()
	return e, !ok
}

// fill reads the object on the context of the caller that asked first, within
// objectGetTimeout.
func (c *objectCache[T]) fill(ctx context.Context, e *cacheEntry[T], ns, name string) {
	key := ns + "/" + name
	gctx, cancel := context.WithTimeout(ctx, objectGetTimeout)
	defer cancel()
	obj, err := c.get(gctx, ns, name)
	if apierrors.IsNotFound(err) {
		err = apierrors.NewNotFound(corev1.Resource(c.resource), name)
	}
	kept := err == nil || apierrors.IsNotFound(err)
	e.obj, e.err, e.at, e.abandoned = obj, err, c.now(), !kept && ctx.Err() != nil
	close(e.done)
	if !kept {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key) // the next Get asks again
		}
		c.mu.Unlock()
	}
}

func (c *objectCache[T]) fresh(e *cacheEntry[T], now time.Time) bool {
	ttl := objectTTL
	if e.err != nil {
		ttl = missingTTL
	}
	return now.Sub(e.at) < ttl
}

// prune drops answers that went stale, at most once per objectTTL; c.mu is held.
func (c *objectCache[T]) prune(now time.Time) {
	if now.Sub(c.pruned) < objectTTL {
		return
	}
	c.pruned = now
	for k, e := range c.entries {
		select {
		case <-e.done:
			if !c.fresh(e, now) {
				delete(c.entries, k)
			}
		default:
		}
	}
}

// Objects is what the provider reads of the API besides pods (provider.Objects): Secrets
// and ConfigMaps through the caches, Services from the node's informer.
type Objects struct {
	secrets    *objectCache[*corev1.Secret]
	configMaps *objectCache[*corev1.ConfigMap]
	listers    *Listers
}

func NewObjects(client kubernetes.Interface, listers *Listers) *Objects {
	return &Objects{
		secrets: newObjectCache("secret", func(ctx context.Context, ns, name string) (*corev1.Secret, error) {
			return client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		}),
		configMaps: newObjectCache("configmap", func(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
			return client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		}),
		listers: listers,
	}
}

func (o *Objects) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return o.secrets.Get(ctx, ns, name)
}

func (o *Objects) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return o.configMaps.Get(ctx, ns, name)
}

// Services lists the node's Services informer; before it is made, there are none.
func (o *Objects) Services(context.Context) ([]*corev1.Service, error) {
	l := o.listers.services.Load()
	if l == nil {
		return nil, nil
	}
	return (*l).List(labels.Everything())
}

// Listers are the listers of the node's informers, set once cmd/satellite made them; the
// provider is made before (the pod controller takes it).
type Listers struct {
	pods     atomic.Pointer[corev1listers.PodLister]
	services atomic.Pointer[corev1listers.ServiceLister]
}

// Set takes the node's listers: the pods bound to the node and the Services. Not its
// Secrets and ConfigMaps: those informers hold nothing (inertClient).
func (l *Listers) Set(pods corev1listers.PodLister, services corev1listers.ServiceLister) {
	l.pods.Store(&pods)
	l.services.Store(&services)
}

// Pods is the pod lister as the provider takes it: until the node's is set, every answer is
// an error other than NotFound, which the provider reads as "unknown".
func (l *Listers) Pods() corev1listers.PodLister { return latePods{&l.pods} }

type latePods struct {
	p *atomic.Pointer[corev1listers.PodLister]
}

var errNoPodLister = errors.New("pods are not listed yet: the node is being made")

func (l latePods) List(sel labels.Selector) ([]*corev1.Pod, error) {
	if p := l.p.Load(); p != nil {
		return (*p).List(sel)
	}
	return nil, errNoPodLister
}

func (l latePods) Pods(ns string) corev1listers.PodNamespaceLister {
	if p := l.p.Load(); p != nil {
		return (*p).Pods(ns)
	}
	return noPods{}
}

type noPods struct{}

func (noPods) List(labels.Selector) ([]*corev1.Pod, error) { return nil, errNoPodLister }
func (noPods) Get(string) (*corev1.Pod, error)             { return nil, errNoPodLister }

// NodeClient is the client to build virtual-kubelet's node and pod controllers with:
// client's, except that nodes and leases are heartbeat's, its Secrets and ConfigMaps informers
// hold nothing, pod statuses are written as patches against l's pods (statuspatch.go), and a
// pod's forced deletion waits until r has stopped its containers (deletegate.go).
func NodeClient(client, heartbeat kubernetes.Interface, l *Listers, r Remover) kubernetes.Interface {
	return inertClient{Interface: withHeartbeat{Interface: client, heartbeat: heartbeat}, pods: &l.pods, sent: newSentStatuses(), removed: r}
}

// inertClient is the client the node's informers are built with: its Secrets and ConfigMaps
// list and watch only objects named inertName, so those informers hold nothing. Everything
// else is the client itself.
type inertClient struct {
	kubernetes.Interface
	// pods, when set, is the pod lister the pods' status patches are made against
	// (statuspatch.go).
	pods    *atomic.Pointer[corev1listers.PodLister]
	sent    *sentStatuses // the statuses last written, by pod UID (statuspatch.go)
	removed Remover       // takes pods off the host (deletegate.go)
}

func (c inertClient) CoreV1() corev1client.CoreV1Interface {
	return inertCoreV1{c.Interface.CoreV1(), c.pods, c.sent, c.removed}
}

type inertCoreV1 struct {
	corev1client.CoreV1Interface
	pods    *atomic.Pointer[corev1listers.PodLister]
	sent    *sentStatuses
	removed Remover
}

func (c inertCoreV1) Pods(ns string) corev1client.PodInterface {
	if c.pods == nil {
		return c.CoreV1Interface.Pods(ns)
	}
	return gatedPods{statusPatchingPods{PodInterface: c.CoreV1Interface.Pods(ns), ns: ns, lister: c.pods, sent: c.sent}, c.removed}
}

func (c inertCoreV1) Secrets(ns string) corev1client.SecretInterface {
	return inertSecrets{c.CoreV1Interface.Secrets(ns)}
}

func (c inertCoreV1) ConfigMaps(ns string) corev1client.ConfigMapInterface {
	return inertConfigMaps{c.CoreV1Interface.ConfigMaps(ns)}
}

type inertSecrets struct{ corev1client.SecretInterface }

func (s inertSecrets) List(ctx context.Context, o metav1.ListOptions) (*corev1.SecretList, error) {
	return s.SecretInterface.List(ctx, inert(o))
}

func (s inertSecrets) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return s.SecretInterface.Watch(ctx, inert(o))
}

type inertConfigMaps struct {
	corev1client.ConfigMapInterface
}

func (s inertConfigMaps) List(ctx context.Context, o metav1.ListOptions) (*corev1.ConfigMapList, error) {
	return s.ConfigMapInterface.List(ctx, inert(o))
}

func (s inertConfigMaps) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return s.ConfigMapInterface.Watch(ctx, inert(o))
}

// inert narrows a list or watch to the one name RBAC allows and no object has.
func inert(o metav1.ListOptions) metav1.ListOptions {
	o.FieldSelector = "metadata.name=" + inertName
	return o
}
