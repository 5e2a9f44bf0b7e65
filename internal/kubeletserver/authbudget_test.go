package kubeletserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
)

func TestGate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		qps          float64
		burst, queue int
		wait         time.Duration
		held         bool          // the one slot is taken
		spend        bool          // a slot was taken and freed: the rate's token is spent
		freeAfter    time.Duration // and freed after this long (0: never)
		cancel       bool          // the caller's context is already done
		want         error
		fast         bool // answered well before wait
	}{
		{name: "free slot", qps: 100, burst: 1, queue: 1, wait: time.Second},
		{name: "slot freed within the wait", qps: 100, burst: 10, queue: 1, wait: 2 * time.Second, held: true, freeAfter: 50 * time.Millisecond},
		{name: "no slot within the wait", qps: 100, burst: 10, queue: 1, wait: 100 * time.Millisecond, held: true, want: errBusy},
		{name: "queue full", qps: 100, burst: 10, queue: 0, wait: time.Second, held: true, want: errBusy, fast: true},
		{name: "rate spent", qps: 0.01, burst: 1, queue: 1, wait: time.Second, spend: true, want: errBusy, fast: true},
		{name: "caller gone", qps: 100, burst: 10, queue: 1, wait: time.Second, held: true, cancel: true, want: context.Canceled, fast: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGate(tc.qps, tc.burst, 1, tc.queue, tc.wait)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			if tc.held || tc.spend {
				release, err := g.acquire(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if tc.spend {
					release()
				} else if tc.freeAfter > 0 {
					time.AfterFunc(tc.freeAfter, release)
				}
			}
			start := time.Now()
			release, err := g.acquire(ctx)
			took := time.Since(start)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("acquire: %v, want %v", err, tc.want)
			}
			if err == nil {
				release()
			}
			if tc.fast && took > tc.wait/2 {
				t.Errorf("refused after %v, want at once", took)
			}
			if tc.want == errBusy && !tc.fast && took < tc.wait {
				t.Errorf("refused after %v, before the wait of %v", took, tc.wait)
			}
		})
	}
}

// fakeReviewer answers TokenReview ("alice" and "nobody" are valid tokens of those users) and
// SubjectAccessReview (alice may, nobody may not), counting them.
type fakeReviewer struct {
	tokenReviews, sars atomic.Int64
	delay              time.Duration
}

func (f *fakeReviewer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(f.delay)
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		f.tokenReviews.Add(1)
		var tr authenticationv1.TokenReview
		_ = json.NewDecoder(r.Body).Decode(&tr)
		if tr.Spec.Token == "alice" || tr.Spec.Token == "nobody" {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: tr.Spec.Token}}
		}
		tr.Spec.Token = ""
		_ = json.NewEncoder(w).Encode(tr)
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		f.sars.Add(1)
		var sar authorizationv1.SubjectAccessReview
		_ = json.NewDecoder(r.Body).Decode(&sar)
		sar.Status.Allowed = sar.Spec.User == "alice"
		_ = json.NewEncoder(w).Encode(sar)
	default:
		http.NotFound(w, r)
	}
}

// testCA writes a CA certificate for --client-ca-file.
func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// authFixture is the kubelet API's auth in front of a handler answering 200, against a fake
// apiserver, with the given gates.
func authFixture(t *testing.T, f *fakeReviewer, tokens, sars *gate) http.Handler {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	clients, err := newReviewClients(&rest.Config{Host: srv.URL}, tokens, sars)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := NewAuth(clients, testCA(t))
	if err != nil {
		t.Fatal(err)
	}
	return WithAuth(auth, "node-a", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
}

func call(h http.Handler, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/containerLogs/ns/p/c", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func roomyGate() *gate { return newGate(1000, 1000, 8, 8, time.Second) }

func TestKubeletAuthBudget(t *testing.T) {
	t.Parallel()
	type step struct {
		token      string
		holdTokens bool // the token gate's one slot is taken meanwhile
		holdSARs   bool // the SubjectAccessReview gate's one slot is taken meanwhile
		code       int
	}
	cases := []struct {
		name               string
		steps              []step
		tokenReviews, sars int64
	}{
		{"invalid token: reviewed once, then cached", []step{{token: "bad", code: 401}, {token: "bad", code: 401}}, 1, 0},
		{"valid token without rights: both reviews cached", []step{{token: "nobody", code: 403}, {token: "nobody", code: 403}}, 1, 1},
		{"valid token with rights", []step{{token: "alice", code: 200}, {token: "alice", code: 200}}, 1, 1},
		{"no token budget: 429, and the refusal is not cached", []step{{token: "bad", holdTokens: true, code: 429}, {token: "bad", code: 401}}, 1, 0},
		{"no token budget: cached tokens pass", []step{{token: "alice", code: 200}, {token: "alice", holdTokens: true, code: 200}}, 1, 1},
		{"no authorization budget: 429", []step{{token: "alice", holdSARs: true, code: 429}, {token: "alice", code: 200}}, 1, 1},
		{"no authorization budget: cached decisions pass", []step{{token: "alice", code: 200}, {token: "alice", holdSARs: true, code: 200}}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := new(fakeReviewer)
			tokens := newGate(1000, 1000, 1, 0, 100*time.Millisecond)
			sars := newGate(1000, 1000, 1, 0, 100*time.Millisecond)
			h := authFixture(t, f, tokens, sars)
			for i, s := range tc.steps {
				var held []func()
				for g, hold := range map[*gate]bool{tokens: s.holdTokens, sars: s.holdSARs} {
					if hold {
						release, err := g.acquire(context.Background())
						if err != nil {
							t.Fatal(err)
						}
						held = append(held, release)
					}
				}
				w := call(h, s.token)
				for _, release := range held {
					release()
				}
				if w.Code != s.code {
					t.Errorf("step %d: HTTP %d, want %d (%s)", i, w.Code, s.code, w.Body)
				}
				if w.Code == 429 && w.Header().Get("Retry-After") != "1" {
					t.Errorf("step %d: 429 without Retry-After: 1", i)
				}
			}
			if got := f.tokenReviews.Load(); got != tc.tokenReviews {
				t.Errorf("%d TokenReviews, want %d", got, tc.tokenReviews)
			}
			if got := f.sars.Load(); got != tc.sars {
				t.Errorf("%d SubjectAccessReviews, want %d", got, tc.sars)
			}
		})
	}
}

// TestKubeletAuthFlood sends random tokens from many callers at once: every one is answered
// (401 or 429) within about the gate's wait, the apiserver sees no more TokenReviews than the
// gate's rate allows, and a caller with a cached token still gets through.
func TestKubeletAuthFlood(t *testing.T) {
	t.Parallel()
	const qps, burst, callers, each = 50, 10, 40, 10
	f := &fakeReviewer{delay: 5 * time.Millisecond}
	h := authFixture(t, f, newGate(qps, burst, 4, 8, 200*time.Millisecond), roomyGate())
	if w := call(h, "alice"); w.Code != 200 {
		t.Fatalf("alice before the flood: HTTP %d", w.Code)
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var slowest time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				b := make([]byte, 16)
				_, _ = rand.Read(b)
				t0 := time.Now()
				w := call(h, hex.EncodeToString(b))
				took := time.Since(t0)
				mu.Lock()
				codes[w.Code]++
				slowest = max(slowest, took)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if w := call(h, "alice"); w.Code != 200 {
				t.Errorf("alice during the flood: HTTP %d", w.Code)
			}
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	if codes[401]+codes[429] != callers*each {
		t.Errorf("answers %v, want only 401 and 429", codes)
	}
	if codes[429] == 0 {
		t.Errorf("answers %v: no request refused for lack of budget", codes)
	}
	if max := int64(burst + qps*elapsed.Seconds() + 1); f.tokenReviews.Load() > max {
		t.Errorf("%d TokenReviews in %v, want at most %d", f.tokenReviews.Load(), elapsed, max)
	}
	if slowest > time.Second {
		t.Errorf("slowest answer took %v, want about the gate's wait (200ms)", slowest)
	}
	t.Logf("%d requests in %v: %v, %d TokenReviews, slowest %v", callers*each, elapsed, codes, f.tokenReviews.Load(), slowest)
}
