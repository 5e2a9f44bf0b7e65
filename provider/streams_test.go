package provider

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
)

// An exec finds its container once, with one ListContainers: Precheck's lookup is handed to
// the exec handler of the same request, and no ContainerStatus call follows. A container
// that is not running still gets the kubelet's answer.
func TestExecLooksUpOnce(t *testing.T) {
	t.Parallel()
	pod := fake.Pod(corev1.RestartPolicyAlways, nil, "server")
	pod.Name, pod.Namespace, pod.UID = "web-0", "shop", "1111-2222"
	c := pod.Spec.Containers[0].Name
	cri := fake.NewRuntime()
	p := New(Config{NodeName: "n"}, Deps{Runtime: cri})
	p.pods.Put(pod)
	labels := map[string]string{kuberuntime.LabelNode: "n", kuberuntime.LabelPodUID: string(pod.UID), kuberuntime.LabelContainerName: c}
	cri.AddContainer("sb", &runtimeapi.ContainerStatus{Id: "old", State: runtimeapi.ContainerState_CONTAINER_EXITED, Labels: labels, CreatedAt: 1, Metadata: &runtimeapi.ContainerMetadata{Name: c, Attempt: 0}})
	cri.AddContainer("sb", &runtimeapi.ContainerStatus{Id: "new", State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: labels, CreatedAt: 2, Metadata: &runtimeapi.ContainerMetadata{Name: c, Attempt: 1}})
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
	if n := len(cri.CallsOf("ListContainers")); n != 1 {
		t.Errorf("%d ListContainers for one exec, want 1", n)
	}
	if n := len(cri.CallsOf("ContainerStatus")); n != 0 {
		t.Errorf("%d ContainerStatus for one exec, want none", n)
	}

	if err := cri.Exit("new", 0, "Completed"); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/exec/"+pod.Namespace+"/"+pod.Name+"/"+c+"?command=true", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `container not found ("`+c+`")`) {
		t.Errorf("exec in an exited container: %d %q", rec.Code, rec.Body.String())
	}
}
