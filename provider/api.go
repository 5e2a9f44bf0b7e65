package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/satellite-vk/satellite/provider/logs"
)

// Precheck answers requests that cannot be served the way the kubelet answers them, before
// virtual-kubelet's handlers do: an exec or attach for a container that is not running gets
// "container not found" before the connection is upgraded (so kubectl shows "unable to
// upgrade connection: ..."), and a log request for a container without the log asked for
// gets the kubelet's Bad Request message as it is.
func (p *Provider) Precheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) == 4 && parts[0] == "containerLogs" {
			if pod := p.pods.Get(parts[1], parts[2]); pod != nil {
				previous := r.URL.Query().Get("previous") == "true"
				if _, err := logs.ContainerID(pod.Name, &pod.Status, parts[3], previous); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				if err := p.hostDown(); err != nil {
					// The apiserver hides the body of a 503 from kubectl logs; a 500's it shows.
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
		}
		if len(parts) == 4 && (parts[0] == "exec" || parts[0] == "attach") {
			ns, pod, container := parts[1], parts[2], parts[3]
			id, err := p.runningContainer(r.Context(), ns, pod, container)
			if err != nil {
				code := http.StatusInternalServerError
				msg := err.Error()
				switch {
				case errors.Is(err, ErrHostUnreachable):
					code = http.StatusServiceUnavailable
				case errdefs.IsNotFound(err) && p.pods.Get(ns, pod) == nil:
					code, msg = http.StatusNotFound, fmt.Sprintf("pod %q does not exist", pod)
				case (errdefs.IsNotFound(err) || errdefs.IsInvalidInput(err)) && parts[0] == "exec":
					code, msg = http.StatusNotFound, fmt.Sprintf("container not found (%q)", container)
				case errdefs.IsNotFound(err) || errdefs.IsInvalidInput(err):
					// The kubelet names the pod by its full name here: name_namespace.
					code, msg = http.StatusNotFound, fmt.Sprintf("container %s not found in pod %s_%s", container, pod, ns)
				}
				http.Error(w, msg, code)
				return
			}
			r = r.WithContext(withCheckedContainer(r.Context(), checkedContainer{ns, pod, container, id}))
		}
		next.ServeHTTP(w, r)
	})
}

// RunningPods serves /runningpods/ as the kubelet does: the pods running on the node with
// their containers' names and images, and nothing else. (virtual-kubelet's own handler returns
// whole pod specs, with env values it resolved from Secrets: readable with just get
// nodes/proxy.)
func (p *Provider) RunningPods(w http.ResponseWriter, _ *http.Request) {
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, pod := range p.pods.List() {
		out := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID}}
		for _, c := range pod.Spec.Containers {
			out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
		}
		list.Items = append(list.Items, out)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}
