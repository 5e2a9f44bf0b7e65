package kubeletserver

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
)

// The kubelet API's review budget. Every request with a token Satellite has not seen costs a
// TokenReview, every new (user, verb, subresource) a SubjectAccessReview, and anyone on the
// pod network can send such requests. They therefore go through clients of their own (never
// the one that renews the node's lease), each behind a gate of its own that bounds both their
// rate and how many wait: a request whose review cannot start within reviewWait is answered
// 429, as the apiserver's max-in-flight filter answers, instead of queueing. Cached decisions
// (x509 clients such as the apiserver, tokens and decisions seen before) never wait for it.
const (
	reviewQPS   = 20 // per gate: TokenReview and SubjectAccessReview each
	reviewBurst = 40
	reviewSlots = 8  // reviews in flight at once
	reviewQueue = 16 // callers waiting for a slot; more are refused at once
	reviewWait  = time.Second
)

// errBusy is a review that could not start within the gate's wait: the request is refused
// with 429 and Retry-After, not decided.
var errBusy = errors.New("kubelet API review budget exhausted")

// gate bounds reviews: acquire takes one of its slots and a token of its rate limiter,
// waiting at most wait for both, and fails at once when queue callers already wait for a slot.
type gate struct {
	slots  *semaphore.Weighted
	rate   *rate.Limiter
	queued atomic.Int64
	queue  int64
	wait   time.Duration
}

func newGate(qps float64, burst, slots, queue int, wait time.Duration) *gate {
	return &gate{slots: semaphore.NewWeighted(int64(slots)), rate: rate.NewLimiter(rate.Limit(qps), burst), queue: int64(queue), wait: wait}
}

// acquire returns the function that frees the slot taken, or errBusy, or ctx's error if ctx
// ended first.
func (g *gate) acquire(ctx context.Context) (release func(), err error) {
	wctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	if !g.slots.TryAcquire(1) {
		if err := g.await(wctx); err != nil {
			return nil, g.refusal(ctx)
		}
	}
	// Wait fails at once when the token would come after the deadline.
	if err := g.rate.Wait(wctx); err != nil {
		g.release()
		return nil, g.refusal(ctx)
	}
	return g.release, nil
}

// await queues for a slot, unless the queue is full.
func (g *gate) await(ctx context.Context) error {
	defer g.queued.Add(-1)
	if g.queued.Add(1) > g.queue {
		return errBusy
	}
	return g.slots.Acquire(ctx, 1)
}

// refusal is ctx's error if the caller went away, else errBusy.
func (g *gate) refusal(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return errBusy
}

func (g *gate) release() { g.slots.Release(1) }

// NewReviewClients are cfg's clients for the kubelet API's reviews, each behind a gate of the
// review budget.
func NewReviewClients(cfg *rest.Config) (ReviewClients, error) {
	return newReviewClients(cfg,
		newGate(reviewQPS, reviewBurst, reviewSlots, reviewQueue, reviewWait),
		newGate(reviewQPS, reviewBurst, reviewSlots, reviewQueue, reviewWait))
}

// newReviewClients are cfg's clients for TokenReview, behind tokens (under the token cache),
// and for SubjectAccessReview, behind sars (in its transport). The gates do the rate
// limiting, with bounded waits: client-go's limiter would queue without bound.
func newReviewClients(cfg *rest.Config, tokens, sars *gate) (ReviewClients, error) {
	r := ReviewClients{tokens: tokens}
	authn := rest.CopyConfig(cfg)
	authn.QPS = -1
	var err error
	if r.authn, err = authenticationv1client.NewForConfig(authn); err != nil {
		return r, err
	}
	authz := rest.CopyConfig(cfg)
	authz.QPS = -1
	authz.Wrap(func(rt http.RoundTripper) http.RoundTripper { return gatedTransport{next: rt, gate: sars} })
	r.authz, err = authorizationv1client.NewForConfig(authz)
	return r, err
}

// gatedTokens is a token authenticator (the TokenReview webhook) behind a gate. It sits
// under the token cache, so only cache misses take a slot, and a refusal is an error, which
// the cache does not keep.
type gatedTokens struct {
	authenticator.Token
	gate *gate
}

func (g gatedTokens) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	release, err := g.gate.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer release()
	return g.Token.AuthenticateToken(ctx, token)
}

// gatedTransport sends a request only with a slot of the gate: under the SubjectAccessReview
// webhook's cache (which calls the client's REST interface directly), only its misses take
// one. A refusal is a transport error wrapping errBusy, which the webhook does not retry.
type gatedTransport struct {
	next http.RoundTripper
	gate *gate
}

func (t gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	release, err := t.gate.acquire(r.Context())
	if err != nil {
		return nil, err
	}
	defer release()
	return t.next.RoundTrip(r)
}
