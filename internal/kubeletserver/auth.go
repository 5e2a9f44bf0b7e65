package kubeletserver

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/websocket"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	tokencache "k8s.io/apiserver/pkg/authentication/token/cache"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	webhooktoken "k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// Review cache lifetimes: the kubelet's defaults (authentication.webhook.cacheTTL,
// authorization.webhook.cacheAuthorizedTTL and cacheUnauthorizedTTL), except that a token
// found invalid is remembered only briefly: the apiserver's delegating authenticator keeps
// those as long as valid ones, so a flood of random tokens would fill the cache for minutes.
const (
	tokenTTL           = 2 * time.Minute
	invalidTokenTTL    = 10 * time.Second
	allowedTTL         = 5 * time.Minute
	deniedTTL          = 30 * time.Second
	tokenReviewTimeout = 10 * time.Second // one TokenReview, once it has a slot
)

// ReviewClients are the apiserver clients the kubelet API's reviews go through, each behind a
// gate of its own (authbudget.go): tokens in front of TokenReview, under its cache; authz's in
// its transport. Neither is the node's heartbeat client. NewReviewClients makes them.
type ReviewClients struct {
	authn  authenticationv1client.AuthenticationV1Interface
	tokens *gate
	authz  authorizationv1client.AuthorizationV1Interface
}

// NewAuth authenticates kubelet API callers like the kubelet does (x509 client
// certificates against the client CA, bearer tokens with TokenReview, anonymous requests
// refused) and authorizes them with SubjectAccessReview, with the kubelet's caches
// (authenticatorfactory.DelegatingAuthenticatorConfig.New, built here for the shorter
// invalidTokenTTL and for the token gate under the cache).
// clientCAFile is --client-ca-file.
func NewAuth(clients ReviewClients, clientCAFile string) (Auth, error) {
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file: %w", err)
	}
	backoff := webhookRetryBackoff()
	review, err := webhooktoken.NewFromInterface(clients.authn, nil, *backoff, tokenReviewTimeout, webhooktoken.AuthenticatorMetrics{
		RecordRequestTotal:   authenticatorfactory.RecordRequestTotal,
		RecordRequestLatency: authenticatorfactory.RecordRequestLatency,
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet API authentication: %w", err)
	}
	cached := tokencache.New(gatedTokens{Token: review, gate: clients.tokens}, false, tokenTTL, invalidTokenTTL)
	authn := group.NewAuthenticatedGroupAdder(union.New(
		x509.NewDynamic(ca.VerifyOptions, x509.CommonNameUserConversion),
		bearertoken.New(cached),
		websocket.NewProtocolAuthenticator(cached),
	))
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: clients.authz,
		AllowCacheTTL:             allowedTTL,
		DenyCacheTTL:              deniedTTL,
		WebhookRetryBackoff:       backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("kubelet API authorization: %w", err)
	}
	return nodeAuth{Request: authn, Authorizer: authz}, nil
}

// Auth authenticates a request and authorizes its attributes.
type Auth interface {
	authenticator.Request
	authorizer.Authorizer
}

type nodeAuth struct {
	authenticator.Request
	authorizer.Authorizer
}

// webhookRetryBackoff is the apiserver's DefaultAuthWebhookRetryBackoff (and the kubelet's):
// five tries, from 500 ms, 1.5 times longer each. Its package, server/options, would bring
// the apiserver's whole configuration into the build (etcd's client, CEL, OpenTelemetry).
func webhookRetryBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// WithAuth serves next to authenticated and authorized callers only: 401 without valid
// credentials, 403 with the kubelet's message naming what was denied, 429 when the review
// budget is spent (authbudget.go). Refusals are logged at debug level, as the kubelet logs
// them at V(2): anyone on the pod network can cause them by the hundred a second.
func WithAuth(auth Auth, nodeName string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		info, ok, err := auth.AuthenticateRequest(r)
		if errors.Is(err, errBusy) {
			log.G(ctx).WithField("remote", r.RemoteAddr).Debug("kubelet API: no budget to authenticate, request refused")
			tooManyRequests(w)
			return
		}
		if err != nil || !ok {
			log.G(ctx).WithError(err).WithField("remote", r.RemoteAddr).Debug("kubelet API: unauthenticated request refused")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		a := requestAttributes(nodeName, info.User, r)
		decision, reason, err := auth.Authorize(ctx, a)
		if errors.Is(err, errBusy) {
			log.G(ctx).WithField("user", info.User.GetName()).Debug("kubelet API: no budget to authorize, request refused")
			tooManyRequests(w)
			return
		}
		if err != nil {
			log.G(ctx).WithError(err).WithField("user", info.User.GetName()).Warn("kubelet API: authorization failed")
			http.Error(w, "Authorization error (user="+info.User.GetName()+", verb="+a.Verb+", resource=nodes, subresource="+a.Subresource+")", http.StatusInternalServerError)
			return
		}
		if decision != authorizer.DecisionAllow {
			log.G(ctx).WithField("user", info.User.GetName()).WithField("verb", a.Verb).WithField("subresource", a.Subresource).
				WithField("reason", reason).Debug("kubelet API: forbidden")
			http.Error(w, "Forbidden (user="+info.User.GetName()+", verb="+a.Verb+", resource=nodes, subresource="+a.Subresource+")", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(log.WithLogger(ctx, log.G(ctx).WithField("user", info.User.GetName()))))
	})
}

// tooManyRequests is the answer to a request whose review found no budget, as the
// apiserver's max-in-flight filter gives it (filters.tooManyRequests).
func tooManyRequests(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "Too many requests, please try again later.", http.StatusTooManyRequests)
}
