package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// MaxHTTPBody is how much of a response the kubelet reads (pkg/probe/http: 10 KiB); the
// lifecycle hooks read no more either.
const MaxHTTPBody = 10 << 10

// NewHTTPGetRequest is the request the kubelet sends for an httpGet probe or hook
// (pkg/probe/http/request.go, NewRequestForHTTPGetAction): scheme defaulting to http, host to
// the pod's IP, the port by number or by the container's port name, the path as given, the
// headers, and a User-Agent "kube-<purpose>/<major.minor>" and "Accept: */*" unless the
// headers set them (an empty Accept removes it). A Host header becomes the request's Host.
func NewHTTPGetRequest(action *corev1.HTTPGetAction, c *corev1.Container, podIP, purpose string) (*http.Request, error) {
	scheme := strings.ToLower(string(action.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := action.Host
	if host == "" {
		host = podIP
	}
	port, err := containerPort(action.Port, c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(action.Path)
	if err != nil {
		u = &url.URL{Path: action.Path} // as the kubelet: too late to reject it
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	headers := http.Header{}
	for _, h := range action.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", "kube-"+purpose+"/"+kubeVersion)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// containerPort resolves a probe's or hook's port: a number, or the name of one of the
// container's ports, or a number written as a string (pkg/probe/util.go, ResolveContainerPort).
func containerPort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				port, found = int(cp.ContainerPort), true
				break
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, fmt.Errorf("port %s not found", p.StrVal)
			}
			port = n
		}
	default:
		return -1, fmt.Errorf("intOrString had no kind: %+v", p)
	}
	if port > 0 && port < 65536 {
		return port, nil
	}
	return port, fmt.Errorf("invalid port number: %v", port)
}

// kubeVersion is the major.minor of the Kubernetes release whose API Satellite is built
// against (k8s.io/api v0.35 is Kubernetes 1.35): the kubelet of that release puts it in its
// probes' User-Agent. TestKubeVersion keeps it in step with go.mod.
const kubeVersion = "1.35"

// NewHTTPClient is the kubelet's probe client (pkg/probe/http/http.go) with its connections
// opened from the host through dial: certificates are not checked, no keep-alive, no proxy,
// no compression, and redirects followed only to the same host, at most 10 (a redirect
// elsewhere ends the probe with the redirect itself). timeout 0 means none, as for hooks.
func NewHTTPClient(dial func(ctx context.Context, addr string) (net.Conn, error), timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's probes: the pod's certificate is not the point
			DisableKeepAlives:   true,
			DisableCompression:  true,
			Proxy:               nil,
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: 10 * time.Second,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return dial(ctx, addr)
			},
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// httpProbe sends the request and judges the answer as the kubelet's DoHTTPProbe: 200-399 is
// success, except a redirect that was not followed, which succeeds with a warning; anything
// else fails, with the status code only (never the body, which may hold secrets). A request
// that fails (refused, timed out) is a failure, not an error.
func httpProbe(client *http.Client, req *http.Request) (outcome, string, error) {
	resp, err := client.Do(req)
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxHTTPBody))
	if err != nil {
		return outcomeFailure, "", err
	}
	switch {
	case resp.StatusCode >= http.StatusOK && resp.StatusCode < http.StatusMultipleChoices:
		return outcomeSuccess, string(body), nil
	case resp.StatusCode >= http.StatusMultipleChoices && resp.StatusCode < http.StatusBadRequest:
		return outcomeWarning, "Probe terminated redirects, Response body: " + string(body), nil
	}
	return outcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode), nil
}
