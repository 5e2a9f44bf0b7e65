package kubeletserver

import (
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// streamingPaths run commands or open connections in containers. The kubelet requires the
// create verb on nodes/proxy for them, also when they arrive as a WebSocket GET: reading is
// not what they do.
var streamingPaths = []string{"/exec", "/attach", "/portForward", "/run"}

// requestAttributes are the kubelet's authorization attributes of a request
// (pkg/kubelet/server/auth.go, as virtual-kubelet's nodeutil.NodeRequestAttr has them):
// resource nodes, name the node, subresource stats, metrics, log or proxy by path, verb from
// the method — except for streaming paths, always create.
func requestAttributes(nodeName string, u user.Info, r *http.Request) authorizer.AttributesRecord {
	a := authorizer.AttributesRecord{
		User:            u,
		Verb:            methodVerb(r.Method),
		APIVersion:      "v1",
		Resource:        "nodes",
		Name:            nodeName,
		ResourceRequest: true,
		Path:            r.URL.Path,
		Subresource:     subresource(r.URL.Path),
	}
	for _, p := range streamingPaths {
		if isSubpath(r.URL.Path, p) {
			a.Verb = "create"
		}
	}
	return a
}

func methodVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// subresource is "log", not "logs", to match pods/log, as in the kubelet.
func subresource(path string) string {
	switch {
	case isSubpath(path, "/stats"):
		return "stats"
	case isSubpath(path, "/metrics"):
		return "metrics"
	case isSubpath(path, "/logs"):
		return "log"
	}
	return "proxy"
}

func isSubpath(subpath, path string) bool {
	return subpath == path || strings.HasPrefix(subpath, path+"/")
}
