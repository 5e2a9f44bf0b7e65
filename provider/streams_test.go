package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// countingCRI counts the container lookups an exec makes; ContainerStatus is not
// implemented, so calling it fails the test.
type countingCRI struct {
	*fakeCRI
	lists atomic.Int32
}

func (c *countingCRI) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest, o ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	c.lists.Add(1)
	return c.fakeCRI.ListContainers(ctx, r, o...)
}

// An exec finds its container once, with one ListContainers: Precheck's lookup is handed to
// the exec handler of the same request, and no ContainerStatus call follows. A container
// that is not running still gets the kubelet's answer.
func TestExecLooksUpOnce(t *testing.T) {
	t.Parallel()
	pod := samplePod()
	c := pod.Spec.Containers[0].Name
	cri := &countingCRI{fakeCRI: &fakeCRI{}}
	p := New(Config{NodeName: "n"}, Deps{Runtime: cri})
	p.store.put(pod)
	labels := map[string]string{kuberuntime.LabelNode: "n", kuberuntime.LabelPodUID: string(pod.UID), kuberuntime.LabelContainerName: c}
	cri.ctrs = append(cri.ctrs,
		&runtimeapi.Container{Id: "old", State: runtimeapi.ContainerState_CONTAINER_EXITED, Labels: labels, CreatedAt: 1, Metadata: &runtimeapi.ContainerMetadata{Name: c, Attempt: 0}},
		&runtimeapi.Container{Id: "new", State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: labels, CreatedAt: 2, Metadata: &runtimeapi.ContainerMetadata{Name: c, Attempt: 1}})
	var got string
	h := p.Precheck(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := p.runningContainer(r.Context(), pod.Namespace, pod.Name, c)
		if err != nil {
			t.Error(err)
		}
		got = id
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/exec/"+pod.Namespace+"/"+pod.Name+"/"+c+"?command=true", nil))
	if rec.Code != http.StatusOK || got != "new" {
		t.Fatalf("exec: %d %q, container %q; want the running instance", rec.Code, rec.Body.String(), got)
	}
	if n := cri.lists.Load(); n != 1 {
		t.Errorf("%d ListContainers for one exec, want 1", n)
	}

	cri.ctrs[1].State = runtimeapi.ContainerState_CONTAINER_EXITED
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/exec/"+pod.Namespace+"/"+pod.Name+"/"+c+"?command=true", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `container not found ("`+c+`")`) {
		t.Errorf("exec in an exited container: %d %q", rec.Code, rec.Body.String())
	}
}
