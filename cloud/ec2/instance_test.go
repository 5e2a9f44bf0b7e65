package ec2

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/satellite-vk/satellite/test/ec2stub"
)

const gpuInstance = "i-0123456789abcdef0"

func TestParseAddressType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]AddressType{"public": PublicAddress, "private": PrivateAddress} {
		if got, err := ParseAddressType(in); err != nil || got != want {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	if _, err := ParseAddressType("elastic"); err == nil || err.Error() != `"elastic": want public or private` {
		t.Errorf("elastic: %v", err)
	}
}

func TestInstanceAddress(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.SetInstance(ec2stub.Instance{ID: gpuInstance, State: "running", PrivateIP: "172.31.5.9", PublicIP: "198.51.100.21",
		Type: "p4d.24xlarge", Zone: "us-west-2b", Tags: map[string]string{"Name": "a100-1"}})
	s.SetInstance(ec2stub.Instance{ID: "i-0fedcba9876543210", State: "terminated", Tags: map[string]string{"Name": "a100-1"}})
	c := testClient(t, s, true)
	ctx := context.Background()
	for _, sel := range []InstanceSelector{{ID: gpuInstance}, {Tags: map[string]string{"Name": "a100-1"}}} {
		i, err := c.Instance(ctx, sel)
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		if pub, _ := i.Address(PublicAddress); pub != "198.51.100.21" {
			t.Errorf("%s: public %q", sel, pub)
		}
		if priv, _ := i.Address(PrivateAddress); priv != "172.31.5.9" {
			t.Errorf("%s: private %q", sel, priv)
		}
		if i.Type != "p4d.24xlarge" || i.Zone != "us-west-2b" {
			t.Errorf("%s: type %q zone %q, want p4d.24xlarge in us-west-2b", sel, i.Type, i.Zone)
		}
	}
	f := s.Requests("DescribeInstances")[1].Form
	if f.Get("Filter.1.Name") != "tag:Name" || f.Get("Filter.2.Name") != "instance-state-name" || f.Get("Filter.2.Value.4") != "stopped" {
		t.Fatalf("tag lookup filters %v", f)
	}
}

func TestInstanceErrors(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.SetInstance(ec2stub.Instance{ID: "i-0000000000000000a", State: "running", PrivateIP: "172.31.5.9", Tags: map[string]string{"pool": "a100"}})
	s.SetInstance(ec2stub.Instance{ID: "i-0000000000000000b", State: "stopped", PrivateIP: "172.31.5.10", Tags: map[string]string{"pool": "a100"}})
	s.SetInstance(ec2stub.Instance{ID: "i-0000000000000000c", State: "terminated", Tags: map[string]string{"pool": "gone"}})
	c := testClient(t, s, true)
	for _, tc := range []struct {
		sel  InstanceSelector
		want string
		kind error
	}{
		{InstanceSelector{ID: "i-0000000000000dead"}, "ec2 DescribeInstances in us-west-2: The instance ID 'i-0000000000000dead' does not exist (InvalidInstanceID.NotFound): check the instance ID and the instance's region", ErrNotFound},
		{InstanceSelector{ID: "gpu-1"}, `ec2 DescribeInstances in us-west-2: Invalid id: "gpu-1" (InvalidInstanceID.Malformed): an instance ID looks like i-0123456789abcdef0`, nil},
		{InstanceSelector{ID: "i-0000000000000000c"}, "instance i-0000000000000000c in us-west-2 is terminated: point Satellite at the host's new instance", ErrNotFound},
		{InstanceSelector{Tags: map[string]string{"pool": "gone"}}, "no instance in us-west-2 that is not terminated carries the tags pool=gone: check the tags and the instance's region", ErrNotFound},
		{InstanceSelector{Tags: map[string]string{"pool": "a100"}}, "2 instances in us-west-2 carry the tags pool=a100 (i-0000000000000000a, i-0000000000000000b): give the instance's ID, or tags only one of them carries", nil},
	} {
		_, err := c.Instance(context.Background(), tc.sel)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v\nwant  %s", tc.sel, err, tc.want)
		}
		if tc.kind != nil && !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v is not %v", tc.sel, err, tc.kind)
		}
	}
	s.Deny("DescribeInstances")
	if _, err := c.Instance(context.Background(), InstanceSelector{ID: "i-0000000000000000a"}); !errors.Is(err, ErrDenied) {
		t.Errorf("denied: %v", err)
	}
}

func TestAddressErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		i    Instance
		typ  AddressType
		want string
	}{
		{Instance{ID: gpuInstance, State: "stopped", PrivateIP: "172.31.5.9"}, PrivateAddress,
			"instance i-0123456789abcdef0 is stopped, not running: start it (aws ec2 start-instances --instance-ids i-0123456789abcdef0)"},
		{Instance{ID: gpuInstance, State: "running", PrivateIP: "172.31.5.9"}, PublicAddress,
			"instance i-0123456789abcdef0 has no public IPv4 address: give it one (an Elastic IP keeps it across stop and start) or reach it by its private address"},
		{Instance{ID: gpuInstance, State: "running"}, PrivateAddress, "instance i-0123456789abcdef0 has no private IPv4 address"},
	} {
		if _, err := tc.i.Address(tc.typ); err == nil || err.Error() != tc.want {
			t.Errorf("%+v %s: err = %v\nwant  %s", tc.i, tc.typ, err, tc.want)
		}
	}
}

// The resolver follows a stop and start: a new public address is used once the interval has
// passed, and EC2 is asked at most once per interval, errors included.
func TestAddressResolverFollowsChange(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.SetInstance(ec2stub.Instance{ID: gpuInstance, State: "running", PrivateIP: "172.31.5.9", PublicIP: "198.51.100.21"})
	r := testClient(t, s, true).AddressResolver(InstanceSelector{ID: gpuInstance}, PublicAddress, "22")
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	ctx := context.Background()
	resolve := func(want string) {
		t.Helper()
		got, err := r.Resolve(ctx)
		if err != nil || got != want {
			t.Fatalf("Resolve = %q, %v; want %q", got, err, want)
		}
	}
	resolve("198.51.100.21:22")
	s.SetInstance(ec2stub.Instance{ID: gpuInstance, State: "stopped", PrivateIP: "172.31.5.9"})
	now = now.Add(5 * time.Second)
	resolve("198.51.100.21:22") // within the interval: not asked again
	if n := len(s.Requests("DescribeInstances")); n != 1 {
		t.Fatalf("%d DescribeInstances within one interval", n)
	}
	now = now.Add(10 * time.Second)
	_, err := r.Resolve(ctx)
	want := "instance i-0123456789abcdef0 is stopped, not running: start it (aws ec2 start-instances --instance-ids i-0123456789abcdef0)"
	if err == nil || err.Error() != want {
		t.Fatalf("stopped: %v", err)
	}
	if _, err := r.Resolve(ctx); err == nil || len(s.Requests("DescribeInstances")) != 2 {
		t.Fatalf("the error is answered again without asking: %v, %d calls", err, len(s.Requests("DescribeInstances")))
	}
	s.SetInstance(ec2stub.Instance{ID: gpuInstance, State: "running", PrivateIP: "172.31.5.9", PublicIP: "203.0.113.50"})
	now = now.Add(10 * time.Second)
	resolve("203.0.113.50:22")
}

func TestAddressResolverPrivate(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.SetInstance(ec2stub.Instance{ID: gpuInstance, State: "running", PrivateIP: "172.31.5.9", Tags: map[string]string{"Name": "a100-1"}})
	r := testClient(t, s, true).AddressResolver(InstanceSelector{Tags: map[string]string{"Name": "a100-1"}}, PrivateAddress, "2222")
	if got, err := r.Resolve(context.Background()); err != nil || got != "172.31.5.9:2222" {
		t.Fatalf("Resolve = %q, %v", got, err)
	}
}
