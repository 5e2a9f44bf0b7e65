// Package ecrstub is a local stand-in of the Amazon ECR API's GetAuthorizationToken, speaking
// its wire protocol (AWS JSON 1.1 over HTTP: POST / with X-Amz-Target), so that Satellite's
// real aws-sdk-go-v2 client is tested against it (its endpoint overridden) with no AWS
// account. It answers with tokens for a user and password the test chooses (the registry of
// the local environment accepts them), and with ECR's error documents on request.
package ecrstub

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Target is the X-Amz-Target of the one operation served.
const Target = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"

// Server is the stand-in. Its fields may be changed between calls; its methods are safe for
// concurrent use.
type Server struct {
	// URL is the endpoint to give the SDK (BaseEndpoint) or satellite --ecr-endpoint.
	URL string

	mu       sync.Mutex
	user     string
	password string
	lifetime time.Duration
	faults   []*Fault
	requests []Request
}

// Fault makes the next Times calls fail with an ECR error document.
type Fault struct {
	Times   int
	Status  int
	Code    string
	Message string
}

// Request is a call the stand-in answered.
type Request struct {
	Target string
	Region string // from the SigV4 credential scope
	Time   time.Time
}

// New starts a stand-in that gives out user:password for lifetime (12 hours, as ECR, when 0),
// on 127.0.0.1, and stops it when the test ends.
func New(t *testing.T, user, password string, lifetime time.Duration) *Server {
	s := &Server{user: user, password: password, lifetime: lifetime}
	if s.lifetime == 0 {
		s.lifetime = 12 * time.Hour
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// AddFault queues a fault.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Requests lists the calls answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

var scope = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/ecr/aws4_request`)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	target := r.Header.Get("X-Amz-Target")
	req := Request{Target: target, Time: time.Now()}
	if m := scope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		req.Region = m[1]
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	var fault *Fault
	if len(s.faults) > 0 {
		fault = s.faults[0]
		if fault.Times--; fault.Times <= 0 {
			s.faults = s.faults[1:]
		}
	}
	user, password, lifetime := s.user, s.password, s.lifetime
	s.mu.Unlock()

	switch {
	case r.Method != http.MethodPost || target != Target:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("operation %q is not served by the stand-in", target))
	case req.Region == "":
		writeError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
	case fault != nil:
		writeError(w, fault.Status, fault.Code, fault.Message)
	default:
		token := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": token,
			"expiresAt":          float64(time.Now().Add(lifetime).UnixMilli()) / 1000,
			"proxyEndpoint":      "https://" + req.Region + ".ecr.stand-in.invalid",
		}}})
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
