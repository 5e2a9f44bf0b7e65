package vkadapter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	corev1listers "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

// A Secret is read once per objectTTL however often it is asked for, again after it; a
// missing one is believed for missingTTL only, in the listers' words; other errors are not
// kept.
func TestObjectCache(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Data: map[string][]byte{"k": []byte("v1")}})
	var gets atomic.Int32
	var fail atomic.Bool
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets.Add(1)
		if fail.Load() {
			return true, nil, apierrors.NewServiceUnavailable("etcd is away")
		}
		return false, nil, nil
	})
	l := NewObjects(client, new(Listers))
	now := time.Unix(1000, 0)
	l.secrets.now = func() time.Time { return now }
	ctx := context.Background()

	for range 3 {
		s, err := l.Secret(ctx, "ns", "creds")
		if err != nil || string(s.Data["k"]) != "v1" {
			t.Fatalf("get: %v %v", s, err)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("3 gets within the TTL made %d API calls, want 1", n)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Data: map[string][]byte{"k": []byte("v2")}}
	if _, err := client.CoreV1().Secrets("ns").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Secret(ctx, "ns", "creds"); string(got.Data["k"]) != "v1" {
		t.Errorf("within the TTL: %q, want the cached v1", got.Data["k"])
	}
	now = now.Add(objectTTL)
	if got, _ := l.Secret(ctx, "ns", "creds"); string(got.Data["k"]) != "v2" {
		t.Errorf("after the TTL: %q, want v2", got.Data["k"])
	}

	_, err := l.Secret(ctx, "ns", "missing")
	if !apierrors.IsNotFound(err) || err.Error() != `secret "missing" not found` {
		t.Errorf("missing: %v, want the lister's NotFound", err)
	}
	before := gets.Load()
	_, _ = l.Secret(ctx, "ns", "missing")
	now = now.Add(missingTTL)
	_, _ = l.Secret(ctx, "ns", "missing")
	if n := gets.Load() - before; n != 1 {
		t.Errorf("not found asked again %d times within and after missingTTL, want 1 (after)", n)
	}

	fail.Store(true)
	now = now.Add(objectTTL)
	if _, err := l.Secret(ctx, "ns", "creds"); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("API down: %v", err)
	}
	fail.Store(false)
	if got, err := l.Secret(ctx, "ns", "creds"); err != nil || string(got.Data["k"]) != "v2" {
		t.Errorf("after the API came back: %v %v; the error must not be kept", got, err)
	}
	if svcs, err := l.Services(ctx); len(svcs) != 0 || err != nil {
		t.Errorf("Services before the node made its informer: %v %v, want none", svcs, err)
	}
}

// Concurrent Gets of one object share one call.
func TestObjectCacheShares(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int32
	c := newObjectCache("configmap", func(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
		calls.Add(1)
		<-release
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, nil
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cm, err := c.Get(context.Background(), "ns", "cfg"); err != nil || cm.Name != "cfg" {
				t.Errorf("get: %v %v", cm, err)
			}
		}()
	}
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others queue behind the first call
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("20 concurrent gets made %d calls, want 1", n)
	}
}

// A read runs on the context of the caller that made it: one that gives up gets its
// context's error, and one that shared the read and has not given up reads again.
func TestObjectCacheContext(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	started := make(chan struct{}, 2)
	c := newObjectCache("secret", func(ctx context.Context, ns, name string) (*corev1.Secret, error) {
		if calls.Add(1) == 1 {
			started <- struct{}{}
			<-ctx.Done() // the first caller gives up while its read hangs
			return nil, ctx.Err()
		}
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, nil
	})
	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.Get(first, "ns", "creds")
		firstErr <- err
	}()
	<-started
	second := make(chan error, 1)
	go func() {
		s, err := c.Get(context.Background(), "ns", "creds")
		if err == nil && s.Name != "creds" {
			err = errors.New("wrong secret " + s.Name)
		}
		second <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the second caller share the first read
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Errorf("caller that gave up: %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Errorf("caller that shared the abandoned read: %v, want the secret", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d reads, want 2 (the abandoned one and one more)", n)
	}
}

// Until the node made its informers, the provider's pod lister answers with an error that is
// not NotFound (the provider reads it as "unknown" and deletes nothing), and no Services.
func TestNodeListers(t *testing.T) {
	t.Parallel()
	l := new(Listers)
	if _, err := l.Pods().Pods("ns").Get("web"); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("Get before the informer: %v, want an error other than NotFound", err)
	}
	if _, err := l.Pods().List(labels.Everything()); err == nil {
		t.Error("List before the informer: no error")
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = idx.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}})
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = svcs.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"}})
	pods := l.Pods() // taken before the node made its informers, as the provider takes it
	l.Set(corev1listers.NewPodLister(idx), corev1listers.NewServiceLister(svcs))
	if pod, err := pods.Pods("ns").Get("web"); err != nil || pod.Name != "web" {
		t.Errorf("Get after: %v %v", pod, err)
	}
	if _, err := pods.Pods("ns").Get("gone"); !apierrors.IsNotFound(err) {
		t.Errorf("Get of a missing pod after: %v, want NotFound", err)
	}
	o := NewObjects(fake.NewClientset(), l)
	if got, err := o.Services(context.Background()); err != nil || len(got) != 1 {
		t.Errorf("Services after: %v %v, want the one", got, err)
	}
}

// The node's Secrets and ConfigMaps informers list and watch only the one name no object has.
func TestInertClient(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	var selectors []string
	var mu sync.Mutex
	client.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if l, ok := a.(k8stesting.ListActionImpl); ok {
			mu.Lock()
			selectors = append(selectors, a.GetResource().Resource+" "+l.GetListRestrictions().Fields.String())
			mu.Unlock()
		}
		return false, nil, nil
	})
	client.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		selectors = append(selectors, a.GetResource().Resource+" watch "+a.(k8stesting.WatchActionImpl).GetWatchRestrictions().Fields.String())
		mu.Unlock()
		return false, nil, nil
	})
	ic := inertClient{Interface: client}
	ctx := context.Background()
	_, _ = ic.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	_, _ = ic.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	_, _ = ic.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if w, err := ic.CoreV1().Secrets("").Watch(ctx, metav1.ListOptions{}); err == nil {
		w.Stop()
	}
	want := []string{"secrets metadata.name=" + inertName, "configmaps metadata.name=" + inertName, "services ",
		"secrets watch metadata.name=" + inertName}
	mu.Lock()
	defer mu.Unlock()
	if len(selectors) != len(want) {
		t.Fatalf("requests %q, want %q", selectors, want)
	}
	for i := range want {
		if selectors[i] != want[i] {
			t.Errorf("request %d: %q, want %q", i, selectors[i], want[i])
		}
	}
}
