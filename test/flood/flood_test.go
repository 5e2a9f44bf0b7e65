package flood

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	ok := Config{URL: "https://127.0.0.1:10250/pods", Allowed: []string{"127.0.0.1:10250"}, Rate: 300, Duration: time.Minute, MaxInFlight: 10}
	cases := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"allowed", func(*Config) {}, true},
		{"another address", func(c *Config) { c.URL = "https://10.0.0.1:10250/pods" }, false},
		{"another port", func(c *Config) { c.URL = "https://127.0.0.1:443/pods" }, false},
		{"a name, not an address", func(c *Config) { c.URL = "https://localhost:10250/pods"; c.Allowed = []string{"localhost:10250"} }, false},
		{"no rate", func(c *Config) { c.Rate = 0 }, false},
		{"too long", func(c *Config) { c.Duration = time.Hour }, false},
		{"unbounded in flight", func(c *Config) { c.MaxInFlight = 0 }, false},
	}
	for _, tc := range cases {
		c := ok
		tc.edit(&c)
		if err := c.check(); (err == nil) != tc.ok {
			t.Errorf("%s: check() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("Authorization"), "good") {
			return
		}
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	res, err := Run(context.Background(), Config{
		URL: srv.URL + "/pods", Allowed: []string{host}, Rate: 200, Duration: time.Second, MaxInFlight: 50,
		Token: func(i int) string {
			if i%2 == 0 {
				return "good"
			}
			return "bad"
		},
		Client: srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent+res.Skipped != 200 || res.Codes[200]+res.Codes[401]+res.Errors != res.Sent || res.Codes[200] == 0 || res.Codes[401] == 0 {
		t.Errorf("%v, want 200 requests, half 200 and half 401", res)
	}
}
