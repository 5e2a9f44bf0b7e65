package ec2stub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Namespace and APIVersion are those of the EC2 query API the SDK speaks.
const (
	Namespace  = "http://ec2.amazonaws.com/doc/2016-11-15/"
	APIVersion = "2016-11-15"
	// Account is the owner of every resource.
	Account = "111122223333"
)

// Server is the stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the endpoint to give the SDK (BaseEndpoint) or satellite --ec2-endpoint.
	URL string
	// Region is used in private DNS names. Default us-west-2.
	Region string

	mu        sync.Mutex
	subnets   map[string]*Subnet
	groups    map[string]string // security group ID -> VPC ID
	enis      map[string]*ENI
	instances map[string]*Instance
	tokens    map[string]string // CreateNetworkInterface ClientToken -> ENI ID
	faults    []*Fault
	denied    map[string]bool
	requests  []Request
	ids       int
}

// Subnet is a subnet new ENIs take their address from.
type Subnet struct {
	ID, VPC, AZ string
	CIDR        netip.Prefix
	next        netip.Addr
}

// ENI is a network interface. Instance is the instance it is attached to, "" when it is not
// (EC2 then answers status "available" and no attachment element at all).
type ENI struct {
	ID, Subnet, VPC, AZ, PrivateIP, Description string
	Groups                                      []string
	Tags                                        map[string]string
	Instance                                    string
	ClientToken                                 string
}

// Instance is an EC2 instance. State is pending, running, stopping, stopped, shutting-down or
// terminated; PublicIP is "" when it has none (a stopped instance without an Elastic IP).
type Instance struct {
	ID, State, PrivateIP, PublicIP string
	Type, Zone                     string // instance type and Availability Zone
	Tags                           map[string]string
}

// Fault makes the next Times calls of Action fail with an EC2 error document. With
// AfterApply the call takes effect first and only its answer is lost, as when a response
// times out after EC2 acted.
type Fault struct {
	Action     string
	Times      int
	Status     int
	Code       string
	Message    string
	AfterApply bool
}

// Throttle is EC2's answer to a client over its request rate.
func Throttle(action string, times int) Fault {
	return Fault{Action: action, Times: times, Status: http.StatusServiceUnavailable,
		Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
}

// Request is one call the stand-in received.
type Request struct {
	Action string
	Form   url.Values
}

// New starts a stand-in, closed when the test ends.
func New(tb testing.TB) *Server {
	s := &Server{
		Region:    "us-west-2",
		subnets:   map[string]*Subnet{},
		groups:    map[string]string{},
		enis:      map[string]*ENI{},
		instances: map[string]*Instance{},
		tokens:    map[string]string{},
		denied:    map[string]bool{},
	}
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// AddSubnet adds a subnet of vpc in az with addresses from cidr (like 10.0.9.0/24).
func (s *Server) AddSubnet(id, vpc, az, cidr string) {
	p := netip.MustParsePrefix(cidr).Masked()
	s.mu.Lock()
	defer s.mu.Unlock()
	// EC2 keeps the first four addresses of a subnet.
	next := p.Addr()
	for range 4 {
		next = next.Next()
	}
	s.subnets[id] = &Subnet{ID: id, VPC: vpc, AZ: az, CIDR: p, next: next}
}

// AddSecurityGroup adds a security group of vpc.
func (s *Server) AddSecurityGroup(id, vpc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = vpc
}

// AddENI adds an existing ENI, as if made outside Satellite.
func (s *Server) AddENI(e ENI) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := e
	c.Tags = copyTags(e.Tags)
	s.enis[e.ID] = &c
}

// ENIs are the ENIs that exist now, by ID.
func (s *Server) ENIs() []ENI {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ENI
	for _, e := range s.enis {
		c := *e
		c.Tags = copyTags(e.Tags)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Attach attaches an ENI to an instance ("" detaches it).
func (s *Server) Attach(eni, instance string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enis[eni].Instance = instance
}

// SetInstance adds or replaces an instance (a stop and start: new state, new public IP).
func (s *Server) SetInstance(i Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := i
	c.Tags = copyTags(i.Tags)
	s.instances[i.ID] = &c
}

// Inject queues a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := f
	s.faults = append(s.faults, &c)
}

// Deny answers every call of action with UnauthorizedOperation, as EC2 does when the caller's
// IAM policy does not allow it.
func (s *Server) Deny(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[action] = true
}

// Requests are the calls received of action ("" for all), in order, retries included.
func (s *Server) Requests(action string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if action == "" || r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// apiError is an EC2 error answer.
type apiError struct {
	status        int
	code, message string
}

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

type handler func(s *Server, form url.Values) (any, *apiError)

var handlers = map[string]handler{
	"DescribeNetworkInterfaces": (*Server).describeNetworkInterfaces,
	"CreateNetworkInterface":    (*Server).createNetworkInterface,
	"DeleteNetworkInterface":    (*Server).deleteNetworkInterface,
	"CreateTags":                (*Server).createTags,
	"DescribeInstances":         (*Server).describeInstances,
}

// ServeHTTP answers one query API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, &apiError{http.StatusMethodNotAllowed, "InvalidAction", "POST only"})
		return
	}
	// The SDK signs every request; the signature itself is not checked.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		writeError(w, &apiError{http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, badRequest("MalformedQueryString", "%v", err))
		return
	}
	form := r.PostForm
	action := form.Get("Action")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Action: action, Form: form})
	if v := form.Get("Version"); v != APIVersion {
		writeError(w, badRequest("InvalidParameterValue", "version %q: this stand-in speaks %s", v, APIVersion))
		return
	}
	fault := s.takeFault(action)
	if fault != nil && !fault.AfterApply {
		writeError(w, &apiError{fault.Status, fault.Code, fault.Message})
		return
	}
	if s.denied[action] {
		writeError(w, &apiError{http.StatusForbidden, "UnauthorizedOperation",
			fmt.Sprintf("You are not authorized to perform this operation. User: arn:aws:sts::%s:assumed-role/satellite/test is not authorized to perform: ec2:%s because no identity-based policy allows the ec2:%s action", Account, action, action)})
		return
	}
	h, ok := handlers[action]
	if !ok {
		writeError(w, badRequest("InvalidAction", "The action %s is not valid for this web service.", action))
		return
	}
	body, apiErr := h(s, form)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if fault != nil {
		writeError(w, &apiError{fault.Status, fault.Code, fault.Message})
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(body)
}

func (s *Server) takeFault(action string) *Fault {
	for i, f := range s.faults {
		if f.Action != action {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}

type errorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Code      string   `xml:"Errors>Error>Code"`
	Message   string   `xml:"Errors>Error>Message"`
	RequestID string   `xml:"RequestID"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(errorResponse{Code: e.code, Message: e.message, RequestID: requestID})
}

const requestID = "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"

// newID is a fresh resource ID such as eni-0a1b2c3d4e5f60718: 17 hex digits that do not sort
// in creation order, as EC2's do not.
func (s *Server) newID(prefix string) string {
	s.ids++
	sum := sha256.Sum256([]byte(strconv.Itoa(s.ids)))
	return prefix + "-0" + hex.EncodeToString(sum[:])[:16]
}
