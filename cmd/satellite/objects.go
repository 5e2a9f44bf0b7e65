package main

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
// cluster-wide list and watch on Secrets. Its informers are kept (nodeutil makes them) but
// pointed at one name no object has, so they hold nothing (inertClient), and RBAC grants list
// and watch on that name only.

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
	// inertName names the one Secret and ConfigMap nodeutil's informers may list and watch;
	// nothing is expected to be called so (it would be cached, and ignored).
	inertName = "satellite.invalid-name-never-used"
)

var errNoList = errors.New("listing is not offered: Satellite reads Secrets and ConfigMaps by name")

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
}

func newObjectCache[T any](resource string, get func(ctx context.Context, ns, name string) (T, error)) *objectCache[T] {
	return &objectCache[T]{resource: resource, get: get, now: time.Now, entries: map[string]*cacheEntry[T]{}}
}

// Get returns the object, as an informer's lister does: shared, not to be changed; a missing
// one is a NotFound error in the listers' words (`secret "creds" not found`).
func (c *objectCache[T]) Get(ns, name string) (T, error) {
	key := ns + "/" + name
	c.mu.Lock()
	now := c.now()
	c.prune(now)
	e, ok := c.entries[key]
	if ok {
		select {
		case <-e.done:
			if !c.fresh(e, now) {
				ok = false
			}
		default: // being read: share it
		}
	}
	if !ok {
		e = &cacheEntry[T]{done: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()
		c.fill(e, key, ns, name)
	} else {
		c.mu.Unlock()
	}
	<-e.done
	return e.obj, e.err
}

func (c *objectCache[T]) fill(e *cacheEntry[T], key, ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), objectGetTimeout)
	defer cancel()
	obj, err := c.get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		err = apierrors.NewNotFound(corev1.Resource(c.resource), name)
	}
	e.obj, e.err, e.at = obj, err, c.now()
	close(e.done)
	if err != nil && !apierrors.IsNotFound(err) {
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

// secretLister and configMapLister are the caches as the provider's listers.
type secretLister struct{ c *objectCache[*corev1.Secret] }

func newSecretLister(client kubernetes.Interface) secretLister {
	return secretLister{newObjectCache("secret", func(ctx context.Context, ns, name string) (*corev1.Secret, error) {
		return client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	})}
}

func (l secretLister) List(labels.Selector) ([]*corev1.Secret, error) { return nil, errNoList }
func (l secretLister) Secrets(ns string) corev1listers.SecretNamespaceLister {
	return secretNamespaceLister{l.c, ns}
}

type secretNamespaceLister struct {
	c  *objectCache[*corev1.Secret]
	ns string
}

func (l secretNamespaceLister) List(labels.Selector) ([]*corev1.Secret, error) { return nil, errNoList }
func (l secretNamespaceLister) Get(name string) (*corev1.Secret, error)        { return l.c.Get(l.ns, name) }

type configMapLister struct {
	c *objectCache[*corev1.ConfigMap]
}

func newConfigMapLister(client kubernetes.Interface) configMapLister {
	return configMapLister{newObjectCache("configmap", func(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
		return client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	})}
}

func (l configMapLister) List(labels.Selector) ([]*corev1.ConfigMap, error) { return nil, errNoList }
func (l configMapLister) ConfigMaps(ns string) corev1listers.ConfigMapNamespaceLister {
	return configMapNamespaceLister{l.c, ns}
}

type configMapNamespaceLister struct {
	c  *objectCache[*corev1.ConfigMap]
	ns string
}

func (l configMapNamespaceLister) List(labels.Selector) ([]*corev1.ConfigMap, error) {
	return nil, errNoList
}
func (l configMapNamespaceLister) Get(name string) (*corev1.ConfigMap, error) {
	return l.c.Get(l.ns, name)
}

// inertClient is the client nodeutil builds its informers with: its Secrets and ConfigMaps
// list and watch only objects named inertName, so those informers hold nothing. Everything
// else is the client itself.
type inertClient struct {
	kubernetes.Interface
	// pods, when set, is the pod lister the pods' status patches are made against
	// (statuspatch.go).
	pods *atomic.Pointer[corev1listers.PodLister]
	sent *sentStatuses // the statuses last written, by pod UID (statuspatch.go)
}

func (c inertClient) CoreV1() corev1client.CoreV1Interface {
	return inertCoreV1{c.Interface.CoreV1(), c.pods, c.sent}
}

type inertCoreV1 struct {
	corev1client.CoreV1Interface
	pods *atomic.Pointer[corev1listers.PodLister]
	sent *sentStatuses
}

func (c inertCoreV1) Pods(ns string) corev1client.PodInterface {
	if c.pods == nil {
		return c.CoreV1Interface.Pods(ns)
	}
	return statusPatchingPods{PodInterface: c.CoreV1Interface.Pods(ns), ns: ns, lister: c.pods, sent: c.sent}
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
