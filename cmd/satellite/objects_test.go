package main

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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
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
	l := newSecretLister(client)
	now := time.Unix(1000, 0)
	l.c.now = func() time.Time { return now }

	for range 3 {
		s, err := l.Secrets("ns").Get("creds")
		if err != nil || string(s.Data["k"]) != "v1" {
			t.Fatalf("get: %v %v", s, err)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("3 gets within the TTL made %d API calls, want 1", n)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Data: map[string][]byte{"k": []byte("v2")}}
	if _, err := client.CoreV1().Secrets("ns").Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Secrets("ns").Get("creds"); string(got.Data["k"]) != "v1" {
		t.Errorf("within the TTL: %q, want the cached v1", got.Data["k"])
	}
	now = now.Add(objectTTL)
	if got, _ := l.Secrets("ns").Get("creds"); string(got.Data["k"]) != "v2" {
		t.Errorf("after the TTL: %q, want v2", got.Data["k"])
	}

	_, err := l.Secrets("ns").Get("missing")
	if !apierrors.IsNotFound(err) || err.Error() != `secret "missing" not found` {
		t.Errorf("missing: %v, want the lister's NotFound", err)
	}
	before := gets.Load()
	_, _ = l.Secrets("ns").Get("missing")
	now = now.Add(missingTTL)
	_, _ = l.Secrets("ns").Get("missing")
	if n := gets.Load() - before; n != 1 {
		t.Errorf("not found asked again %d times within and after missingTTL, want 1 (after)", n)
	}

	fail.Store(true)
	now = now.Add(objectTTL)
	if _, err := l.Secrets("ns").Get("creds"); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("API down: %v", err)
	}
	fail.Store(false)
	if got, err := l.Secrets("ns").Get("creds"); err != nil || string(got.Data["k"]) != "v2" {
		t.Errorf("after the API came back: %v %v; the error must not be kept", got, err)
	}
	if _, err := l.List(nil); !errors.Is(err, errNoList) {
		t.Errorf("List: %v", err)
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
			if cm, err := c.Get("ns", "cfg"); err != nil || cm.Name != "cfg" {
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

// nodeutil's informers list and watch only the one name no object has.
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
