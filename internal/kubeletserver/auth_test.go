package kubeletserver

import (
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestRequestAttributes(t *testing.T) {
	u := &user.DefaultInfo{Name: "system:serviceaccount:ns:reader"}
	cases := []struct {
		method, path, upgrade string
		verb, sub             string
	}{
		{"GET", "/containerLogs/ns/p/c", "", "get", "proxy"},
		{"POST", "/exec/ns/p/c?command=ls", "SPDY/3.1", "create", "proxy"},
		{"GET", "/exec/ns/p/c?command=ls", "websocket", "create", "proxy"},
		{"GET", "/attach/ns/p/c", "websocket", "create", "proxy"},
		{"GET", "/portForward/ns/p", "websocket", "create", "proxy"},
		{"POST", "/run/ns/p/c", "", "create", "proxy"},
		{"GET", "/executive/summary", "", "get", "proxy"},
		{"GET", "/stats/summary", "", "get", "stats"},
		{"GET", "/metrics/resource", "", "get", "metrics"},
		{"GET", "/logs/messages", "", "get", "log"},
		{"GET", "/pods", "", "get", "proxy"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.upgrade != "" {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", tc.upgrade)
		}
		a := requestAttributes("node-a", u, r)
		if a.Verb != tc.verb || a.Subresource != tc.sub || a.Resource != "nodes" || a.Name != "node-a" || a.User != u {
			t.Errorf("%s %s: verb=%s resource=%s/%s name=%s, want verb=%s nodes/%s node-a", tc.method, tc.path, a.Verb, a.Resource, a.Subresource, a.Name, tc.verb, tc.sub)
		}
	}
}
