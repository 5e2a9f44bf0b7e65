package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// kubeletAuth authenticates kubelet API callers like the kubelet does (x509 client
// certificates against the client CA, bearer tokens with TokenReview, anonymous requests
// refused) and authorizes them with SubjectAccessReview, caching decisions as the kubelet does
// (authentication 2 min, allowed 5 min, denied 30 s).
func kubeletAuth(client kubernetes.Interface, c *config) (nodeutil.Auth, error) {
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", c.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file: %w", err)
	}
	auth, err := nodeutil.WebhookAuth(client, c.NodeName, func(cfg *nodeutil.WebhookAuthConfig) error {
		cfg.AuthnConfig.ClientCertificateCAContentProvider = ca
		cfg.AuthnConfig.Anonymous = nil // no anonymous access, whatever the library's default
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet API authentication: %w", err)
	}
	return auth, nil
}

// streamingPaths run commands or open connections in containers. The kubelet requires the
// create verb on nodes/proxy for them, also when they arrive as a WebSocket GET: reading is
// not what they do.
var streamingPaths = []string{"/exec", "/attach", "/portForward", "/run"}

// requestAttributes are the kubelet's authorization attributes of a request: resource nodes,
// name the node, subresource stats, metrics, log or proxy by path, verb from the method —
// except for streaming paths, always create.
func requestAttributes(nodeName string, u user.Info, r *http.Request) authorizer.AttributesRecord {
	a := nodeutil.NodeRequestAttr{NodeName: nodeName}.GetRequestAttributes(u, r).(authorizer.AttributesRecord)
	for _, p := range streamingPaths {
		if r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/") {
			a.Verb = "create"
		}
	}
	return a
}

// withKubeletAuth serves next to authenticated and authorized callers only: 401 without valid
// credentials, 403 with the kubelet's message naming what was denied.
func withKubeletAuth(auth nodeutil.Auth, nodeName string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		info, ok, err := auth.AuthenticateRequest(r)
		if err != nil || !ok {
			log.G(ctx).WithError(err).WithField("remote", r.RemoteAddr).Debug("kubelet API: unauthenticated request refused")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		a := requestAttributes(nodeName, info.User, r)
		decision, reason, err := auth.Authorize(ctx, a)
		if err != nil {
			log.G(ctx).WithError(err).WithField("user", info.User.GetName()).Warn("kubelet API: authorization failed")
			http.Error(w, "Authorization error (user="+info.User.GetName()+", verb="+a.Verb+", resource=nodes, subresource="+a.Subresource+")", http.StatusInternalServerError)
			return
		}
		if decision != authorizer.DecisionAllow {
			log.G(ctx).WithField("user", info.User.GetName()).WithField("verb", a.Verb).WithField("subresource", a.Subresource).
				WithField("reason", reason).Info("kubelet API: forbidden")
			http.Error(w, "Forbidden (user="+info.User.GetName()+", verb="+a.Verb+", resource=nodes, subresource="+a.Subresource+")", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(log.WithLogger(ctx, log.G(ctx).WithField("user", info.User.GetName()))))
	})
}
