package ecr

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/satellite-vk/satellite/test/ecrstub"
)

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return time.Millisecond, nil }

// testClient is the real SDK client pointed at the stand-in, with static credentials and no
// shared config files.
func testClient(t *testing.T, s *ecrstub.Server) *Client {
	t.Helper()
	c, err := NewClient(context.Background(), Config{Endpoint: s.URL, LoadOptions: []func(*config.LoadOptions) error{
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIASATELLITETEST", "not-a-secret", "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} })
		}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseImage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		image           string
		account, region string
	}{
		{"111122223333.dkr.ecr.us-west-2.amazonaws.com/team/model:v1", "111122223333", "us-west-2"},
		{"111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn/m@sha256:abc", "111122223333", "cn-north-1"},
		{"111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com/m", "111122223333", "us-gov-west-1"},
		{"111122223333.dkr-ecr.eu-central-1.on.aws/m", "111122223333", "eu-central-1"},
		{"111122223333.DKR.ECR.us-east-1.AMAZONAWS.COM/m", "111122223333", "us-east-1"},
		{"11112222333.dkr.ecr.us-west-2.amazonaws.com/m", "", ""},      // 11 digits
		{"111122223333.dkr.ecr.us-west-2.amazonaws.com:443/m", "", ""}, // a port
		{"111122223333.dkr.ecr.us-west-2.amazonaws.com.example/m", "", ""},
		{"111122223333.dkr.ecr.us-west-2.amazonaws.com", "", ""}, // no repository
		{"registry.example:5000/m", "", ""},
		{"busybox", "", ""},
	} {
		r, ok := ParseImage(tt.image)
		if ok != (tt.account != "") || r.Account != tt.account || r.Region != tt.region {
			t.Errorf("ParseImage(%q) = %+v, %v; want account %q region %q", tt.image, r, ok, tt.account, tt.region)
		}
	}
}

func TestCredentialsCachedPerRegion(t *testing.T) {
	t.Parallel()
	s := ecrstub.New(t, "AWS", "token-1", time.Hour)
	c := testClient(t, s)
	west, _ := ParseImage("111122223333.dkr.ecr.us-west-2.amazonaws.com/m")
	west2, _ := ParseImage("444455556666.dkr.ecr.us-west-2.amazonaws.com/m")
	east, _ := ParseImage("111122223333.dkr.ecr.us-east-1.amazonaws.com/m")
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(r Registry) {
			defer wg.Done()
			cred, err := c.Credentials(context.Background(), r)
			if err != nil || cred.Username != "AWS" || cred.Password != "token-1" {
				t.Errorf("Credentials(%s) = %+v, %v", r.Host, cred, err)
			}
			if d := cred.Expires.Sub(start); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("expires %s after the call, want an hour", d)
			}
		}([]Registry{west, west2, east}[i%3])
	}
	wg.Wait()
	regions := map[string]int{}
	for _, r := range s.Requests() {
		regions[r.Region]++
	}
	if len(regions) != 2 || regions["us-west-2"] != 1 || regions["us-east-1"] != 1 {
		t.Errorf("GetAuthorizationToken calls by region: %v; want one each for us-west-2 and us-east-1", regions)
	}

	// Past 80 % of the lifetime, the next call asks again.
	c.now = func() time.Time { return time.Now().Add(49 * time.Minute) }
	if _, err := c.Credentials(context.Background(), west); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("%d calls after the token reached 80 %% of its lifetime, want 3", n)
	}
}

func TestCredentialsErrors(t *testing.T) {
	t.Parallel()
	west, _ := ParseImage("111122223333.dkr.ecr.us-west-2.amazonaws.com/m")
	for _, tt := range []struct {
		name   string
		fault  ecrstub.Fault
		denied bool
		want   string
	}{
		{"denied", ecrstub.Fault{Times: 1, Status: 400, Code: "AccessDeniedException", Message: "User is not authorized to perform: ecr:GetAuthorizationToken"},
			true, "ecr GetAuthorizationToken in us-west-2: not authorized (AccessDeniedException): allow ecr:GetAuthorizationToken"},
		{"bad credentials", ecrstub.Fault{Times: 1, Status: 400, Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid."},
			true, "AWS rejected Satellite's credentials (UnrecognizedClientException: The security token included in the request is invalid.)"},
		{"throttled past the retries", ecrstub.Fault{Times: 10, Status: 400, Code: "ThrottlingException", Message: "Rate exceeded"},
			false, "ecr GetAuthorizationToken in us-west-2: still ThrottlingException after the SDK's retries"},
		{"server error", ecrstub.Fault{Times: 10, Status: 500, Code: "ServerException", Message: "internal"},
			false, "ecr GetAuthorizationToken in us-west-2: internal (ServerException)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := ecrstub.New(t, "AWS", "pw", 0)
			s.AddFault(tt.fault)
			_, err := testClient(t, s).Credentials(context.Background(), west)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrDenied) != tt.denied {
				t.Errorf("err = %v; want it to contain %q, denied %v", err, tt.want, tt.denied)
			}
		})
	}

	// Throttled twice, then served: the SDK's retries carry it.
	s := ecrstub.New(t, "AWS", "pw", 0)
	s.AddFault(ecrstub.Fault{Times: 2, Status: 400, Code: "ThrottlingException", Message: "Rate exceeded"})
	if cred, err := testClient(t, s).Credentials(context.Background(), west); err != nil || cred.Password != "pw" {
		t.Errorf("after two throttled answers: %+v, %v", cred, err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("%d calls, want 3 (two throttled, one served)", n)
	}
}

func TestDecodeToken(t *testing.T) {
	t.Parallel()
	for token, want := range map[string]string{
		"QVdTOnNlY3JldA==": "AWS/secret",
		"QVdTOmE6Yg==":     "AWS/a:b",
		"bm9jb2xvbg==":     "the authorization token is not user:password",
		"!!":               "the authorization token is not base64",
		"QVdTOg==":         "the authorization token is not user:password",
	} {
		c, err := decodeToken(token)
		got := c.Username + "/" + c.Password
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("decodeToken(%q) = %q, want %q", token, got, want)
		}
	}
}
