package ec2

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/satellite-vk/satellite/test/ec2stub"
)

// noBackoff keeps retried calls quick in tests; which errors are retried stays the SDK's.
type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return time.Millisecond, nil }

// testClient is the real SDK client pointed at the stand-in, with static credentials and no
// shared config files, so nothing of the machine's AWS setup leaks in.
func testClient(t *testing.T, s *ec2stub.Server, fastRetries bool) *Client {
	t.Helper()
	opts := []func(*config.LoadOptions) error{
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIASATELLITETEST", "not-a-secret", "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	}
	if fastRetries {
		opts = append(opts, config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} })
		}))
	}
	c, err := NewClient(context.Background(), Config{Region: s.Region, Endpoint: s.URL, LoadOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	c.settle = 5 * time.Millisecond
	return c
}

// newStub is a VPC with one subnet and one security group, and the instance ENIs get attached to.
func newStub(t *testing.T) *ec2stub.Server {
	s := ec2stub.New(t)
	s.AddSubnet("subnet-0123456789abcdef0", "vpc-0aaaaaaaaaaaaaaa0", "us-west-2a", "10.0.9.0/24")
	s.AddSecurityGroup("sg-0123456789abcdef0", "vpc-0aaaaaaaaaaaaaaa0")
	s.AddSecurityGroup("sg-0fffffffffffffff0", "vpc-0bbbbbbbbbbbbbbb0")
	return s
}

func TestNewClientNeedsRegion(t *testing.T) {
	t.Parallel()
	if _, err := NewClient(context.Background(), Config{}); err == nil || err.Error() != "ec2: no region" {
		t.Fatalf("err = %v", err)
	}
}

// A throttled call is retried by the SDK (RequestLimitExceeded with 503 is one of its
// throttle errors) with its default retryer, back-off included, and then succeeds.
func TestThrottledCallIsRetried(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.AddENI(ec2stub.ENI{ID: "eni-0a1b2c3d4e5f60718", VPC: "vpc-0aaaaaaaaaaaaaaa0", PrivateIP: "10.0.9.178"})
	s.Inject(ec2stub.Throttle("DescribeNetworkInterfaces", 2))
	c := testClient(t, s, false)
	e, err := c.ENIByID(context.Background(), "eni-0a1b2c3d4e5f60718")
	if err != nil {
		t.Fatal(err)
	}
	if e.PrivateIP != "10.0.9.178" {
		t.Fatalf("ENI %+v", e)
	}
	if n := len(s.Requests("DescribeNetworkInterfaces")); n != 3 {
		t.Fatalf("%d requests, want 3 (two throttled, then the answer)", n)
	}
}

func TestThrottledBeyondRetries(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.Inject(ec2stub.Throttle("DescribeNetworkInterfaces", 100))
	c := testClient(t, s, true)
	_, err := c.ENIByID(context.Background(), "eni-0a1b2c3d4e5f60718")
	want := "ec2 DescribeNetworkInterfaces in us-west-2: still RequestLimitExceeded after the SDK's retries: other clients in the account are using up its EC2 request rate; try again later"
	if err == nil || err.Error() != want || !errors.Is(err, ErrThrottled) {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if n := len(s.Requests("DescribeNetworkInterfaces")); n != retry.DefaultMaxAttempts {
		t.Fatalf("%d requests, want %d", n, retry.DefaultMaxAttempts)
	}
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault ec2stub.Fault
		want  string
		kind  error
	}{
		{"denied", ec2stub.Fault{Status: http.StatusForbidden, Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."},
			"ec2 DescribeNetworkInterfaces in us-west-2: not authorized (UnauthorizedOperation): allow ec2:DescribeNetworkInterfaces in the IAM policy of the role Satellite's service account uses (docs/eks.md, IAM)", ErrDenied},
		{"bad credentials", ec2stub.Fault{Status: http.StatusUnauthorized, Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials"},
			"ec2 DescribeNetworkInterfaces in us-west-2: AWS rejected Satellite's credentials (AuthFailure: AWS was not able to validate the provided access credentials): check the IRSA role annotation or the Pod Identity association of its service account", ErrDenied},
		{"not found", ec2stub.Fault{Status: http.StatusBadRequest, Code: "InvalidNetworkInterfaceID.NotFound", Message: "The networkInterface ID 'eni-0a1b2c3d4e5f60718' does not exist"},
			"ec2 DescribeNetworkInterfaces in us-west-2: The networkInterface ID 'eni-0a1b2c3d4e5f60718' does not exist (InvalidNetworkInterfaceID.NotFound): check the ENI ID and the region", ErrNotFound},
		{"unknown code", ec2stub.Fault{Status: http.StatusBadRequest, Code: "OptInRequired", Message: "You are not subscribed to this service."},
			"ec2 DescribeNetworkInterfaces in us-west-2: You are not subscribed to this service (OptInRequired)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t)
			f := tc.fault
			f.Action, f.Times = "DescribeNetworkInterfaces", 1
			s.Inject(f)
			_, err := testClient(t, s, true).ENIByID(context.Background(), "eni-0a1b2c3d4e5f60718")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant  %s", err, tc.want)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("%v is not %v", err, tc.kind)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != f.Code || e.Action != "DescribeNetworkInterfaces" {
				t.Fatalf("error %#v does not carry the action and code", e)
			}
		})
	}
}

func TestDeniedByIAM(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.Deny("CreateNetworkInterface")
	c := testClient(t, s, true)
	_, err := c.EnsureENI(context.Background(), map[string]string{TagHost: "a100-1"},
		&ENICreate{Subnet: "subnet-0123456789abcdef0", SecurityGroups: []string{"sg-0123456789abcdef0"}})
	want := "ec2 CreateNetworkInterface in us-west-2: not authorized (UnauthorizedOperation): allow ec2:CreateNetworkInterface in the IAM policy of the role Satellite's service account uses (docs/eks.md, IAM)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrDenied) {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	if n := len(s.ENIs()); n != 0 {
		t.Fatalf("%d ENIs after a denied create", n)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	c := testClient(t, s, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ENIByID(ctx, "eni-0a1b2c3d4e5f60718")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want one that wraps context.Canceled", err)
	}
}
