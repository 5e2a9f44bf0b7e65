package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satellite-vk/satellite/test/ec2stub"
)

const (
	vpc    = "vpc-0aaaaaaaaaaaaaaa0"
	subnet = "subnet-0123456789abcdef0"
	sg     = "sg-0123456789abcdef0"
)

var hostTags = map[string]string{TagHost: "a100-1"}

func create() *ENICreate {
	return &ENICreate{Subnet: subnet, SecurityGroups: []string{sg}, Description: "Satellite node a100-1"}
}

func TestENIByID(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.AddENI(ec2stub.ENI{ID: "eni-0a1b2c3d4e5f60718", VPC: vpc, Subnet: subnet, AZ: "us-west-2a", PrivateIP: "10.0.9.178",
		Instance: "i-0123456789abcdef0", Tags: map[string]string{"Name": "by hand"}})
	e, err := testClient(t, s, true).ENIByID(context.Background(), "eni-0a1b2c3d4e5f60718")
	if err != nil {
		t.Fatal(err)
	}
	want := ENI{ID: "eni-0a1b2c3d4e5f60718", PrivateIP: "10.0.9.178", VPC: vpc, Subnet: subnet, AZ: "us-west-2a",
		Attached: true, Instance: "i-0123456789abcdef0", Tags: map[string]string{"Name": "by hand"}}
	if fmt.Sprint(e) != fmt.Sprint(want) || e.Managed() {
		t.Fatalf("ENI\n %+v\nwant\n %+v", e, want)
	}
	if got := s.Requests("DescribeNetworkInterfaces")[0].Form.Get("NetworkInterfaceId.1"); got != "eni-0a1b2c3d4e5f60718" {
		t.Fatalf("asked for %q", got)
	}
}

func TestENIByIDErrors(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	c := testClient(t, s, true)
	for id, want := range map[string]string{
		"eni-0000000000000dead": "ec2 DescribeNetworkInterfaces in us-west-2: The networkInterface ID 'eni-0000000000000dead' does not exist (InvalidNetworkInterfaceID.NotFound): check the ENI ID and the region",
		"eni-nope":              `ec2 DescribeNetworkInterfaces in us-west-2: Invalid id: "eni-nope" (expecting "eni-...") (InvalidNetworkInterfaceID.Malformed): an ENI ID looks like eni-0a1b2c3d4e5f60718`,
	} {
		_, err := c.ENIByID(context.Background(), id)
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v\nwant  %s", id, err, want)
		}
	}
}

// An ENI made by hand and tagged is found by its tags; nothing is created.
func TestEnsureENIFindsTagged(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.AddENI(ec2stub.ENI{ID: "eni-0a1b2c3d4e5f60718", VPC: vpc, PrivateIP: "10.0.9.178", Tags: map[string]string{TagHost: "a100-1", "team": "ml"}})
	s.AddENI(ec2stub.ENI{ID: "eni-0b1b2c3d4e5f60718", VPC: vpc, PrivateIP: "10.0.9.179", Tags: map[string]string{TagHost: "a100-2"}})
	e, err := testClient(t, s, true).EnsureENI(context.Background(), hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "eni-0a1b2c3d4e5f60718" || e.PrivateIP != "10.0.9.178" {
		t.Fatalf("found %+v", e)
	}
	if n := len(s.Requests("CreateNetworkInterface")); n != 0 {
		t.Fatalf("%d creates, want none", n)
	}
	f := s.Requests("DescribeNetworkInterfaces")[0].Form
	if f.Get("Filter.1.Name") != "tag:satellite.dev/host" || f.Get("Filter.1.Value.1") != "a100-1" {
		t.Fatalf("filters %v", f)
	}
}

func TestEnsureENIErrors(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.AddENI(ec2stub.ENI{ID: "eni-0a1b2c3d4e5f60718", VPC: vpc, PrivateIP: "10.0.9.178", Tags: map[string]string{"team": "ml"}})
	s.AddENI(ec2stub.ENI{ID: "eni-0b1b2c3d4e5f60718", VPC: vpc, PrivateIP: "10.0.9.179", Tags: map[string]string{"team": "ml"}})
	c := testClient(t, s, true)
	ctx := context.Background()

	_, err := c.EnsureENI(ctx, hostTags, nil)
	want := "no ENI in us-west-2 carries the tags satellite.dev/host=a100-1: tag the node's ENI so, or give a subnet and security groups for Satellite to create it"
	if err == nil || err.Error() != want || !errors.Is(err, ErrNotFound) {
		t.Errorf("none, no create: err = %v\nwant  %s", err, want)
	}
	_, err = c.EnsureENI(ctx, map[string]string{"team": "ml"}, create())
	want = "2 ENIs in us-west-2 carry the tags team=ml (eni-0a1b2c3d4e5f60718, eni-0b1b2c3d4e5f60718): give the ENI's ID, or tags only one of them carries"
	if err == nil || err.Error() != want {
		t.Errorf("ambiguous: err = %v\nwant  %s", err, want)
	}
	if _, err := c.EnsureENI(ctx, nil, nil); err == nil {
		t.Error("no tags: no error")
	}
	if n := len(s.Requests("CreateNetworkInterface")); n != 0 {
		t.Fatalf("%d creates, want none", n)
	}
}

func TestCreateENIErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		create ENICreate
		full   bool
		want   string
	}{
		"no subnet": {ENICreate{Subnet: "subnet-0000000000000dead", SecurityGroups: []string{sg}},
			false, "ec2 CreateNetworkInterface in us-west-2: The subnet ID 'subnet-0000000000000dead' does not exist (InvalidSubnetID.NotFound): check the subnet ID and the region"},
		"no group": {ENICreate{Subnet: subnet, SecurityGroups: []string{"sg-0000000000000dead"}},
			false, "ec2 CreateNetworkInterface in us-west-2: The securityGroup ID 'sg-0000000000000dead' does not exist (InvalidSecurityGroupID.NotFound): check the security group IDs: they must be in the subnet's VPC"},
		"group of another VPC": {ENICreate{Subnet: subnet, SecurityGroups: []string{"sg-0fffffffffffffff0"}},
			false, "ec2 CreateNetworkInterface in us-west-2: Security group sg-0fffffffffffffff0 and subnet subnet-0123456789abcdef0 belong to different networks (InvalidParameter): check that the security groups are in the subnet's VPC"},
		"subnet full": {ENICreate{Subnet: "subnet-0ffffffffffffff00", SecurityGroups: []string{sg}},
			true, "ec2 CreateNetworkInterface in us-west-2: The specified subnet subnet-0ffffffffffffff00 does not have enough free addresses to satisfy the request (InsufficientFreeAddressesInSubnet): choose a subnet with free addresses"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t)
			s.AddSubnet("subnet-0ffffffffffffff00", vpc, "us-west-2b", "10.0.10.0/30")
			_, err := testClient(t, s, true).EnsureENI(context.Background(), hostTags, &tc.create)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant  %s", err, tc.want)
			}
			if errors.Is(err, ErrNotFound) != strings.Contains(tc.want, ".NotFound") {
				t.Fatalf("ErrNotFound: %v", errors.Is(err, ErrNotFound))
			}
		})
	}
}

// The first start creates the ENI, tagged; a restart (a new client) finds and reuses it. It
// is never deleted unless asked.
func TestEnsureENICreatesOnceAndReuses(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	ctx := context.Background()
	first, err := testClient(t, s, true).EnsureENI(ctx, hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	if first.PrivateIP != "10.0.9.4" || first.VPC != vpc || first.Attached || !first.Managed() {
		t.Fatalf("created %+v", first)
	}
	for range 3 {
		again, err := testClient(t, s, true).EnsureENI(ctx, hostTags, create())
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID || again.PrivateIP != first.PrivateIP {
			t.Fatalf("restart got %+v, want %s", again, first.ID)
		}
	}
	enis := s.ENIs()
	if len(enis) != 1 || len(s.Requests("CreateNetworkInterface")) != 1 || len(s.Requests("DeleteNetworkInterface")) != 0 {
		t.Fatalf("ENIs %+v after 4 starts; %d creates", enis, len(s.Requests("CreateNetworkInterface")))
	}
	e := enis[0]
	if e.Subnet != subnet || fmt.Sprint(e.Groups) != "["+sg+"]" || e.Description != "Satellite node a100-1" {
		t.Fatalf("created in %s with %v, %q", e.Subnet, e.Groups, e.Description)
	}
	for k, v := range map[string]string{TagHost: "a100-1", TagManagedBy: "satellite", "node.k8s.amazonaws.com/no_manage": "true"} {
		if e.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, e.Tags[k], v)
		}
	}
	if len(e.Tags[TagCreated]) != len(createdLayout) {
		t.Errorf("tag %s = %q", TagCreated, e.Tags[TagCreated])
	}
	// Tagged in the create call itself: never an untagged ENI, no CreateTags call.
	f := s.Requests("CreateNetworkInterface")[0].Form
	if f.Get("TagSpecification.1.ResourceType") != "network-interface" || len(s.Requests("CreateTags")) != 0 {
		t.Fatalf("create form %v", f)
	}
}

// The first answer to CreateNetworkInterface is lost after EC2 made the ENI: the SDK retries
// with the same client token, and EC2 answers the same ENI.
func TestCreateRetryMakesNoSecondENI(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.Inject(ec2stub.Fault{Action: "CreateNetworkInterface", Times: 1, Status: http.StatusInternalServerError,
		Code: "InternalError", Message: "An internal error has occurred", AfterApply: true})
	e, err := testClient(t, s, true).EnsureENI(context.Background(), hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests("CreateNetworkInterface")
	if len(reqs) != 2 || reqs[0].Form.Get("ClientToken") == "" || reqs[0].Form.Get("ClientToken") != reqs[1].Form.Get("ClientToken") {
		t.Fatalf("%d creates; tokens must be set and equal", len(reqs))
	}
	if enis := s.ENIs(); len(enis) != 1 || enis[0].ID != e.ID {
		t.Fatalf("ENIs %+v, want only %s", enis, e.ID)
	}
}

// Satellites that start together for the same host end up with one ENI between them.
func TestEnsureENIConcurrentStarts(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	const n = 4
	got := make([]ENI, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		c := testClient(t, s, true)
		c.settle = 100 * time.Millisecond // well above a request's time here, as 3 s is above EC2's
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = c.EnsureENI(context.Background(), hostTags, create())
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i].ID != got[0].ID {
			t.Fatalf("start %d got %s, start 0 got %s", i, got[i].ID, got[0].ID)
		}
	}
	if enis := s.ENIs(); len(enis) != 1 || enis[0].ID != got[0].ID {
		t.Fatalf("ENIs %+v after concurrent starts", enis)
	}
	t.Logf("%d creates, %d deletes", len(s.Requests("CreateNetworkInterface")), len(s.Requests("DeleteNetworkInterface")))
}

// The race made deterministic: another Satellite's ENI is older than mine, so mine goes.
func TestSettleKeepsTheOlder(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.AddENI(ec2stub.ENI{ID: "eni-0fffffffffffffff0", VPC: vpc, PrivateIP: "10.0.9.200",
		Tags: map[string]string{TagHost: "a100-1", TagManagedBy: ManagedBy, TagCreated: "2020-01-01T00:00:00.000000000Z"}})
	c := testClient(t, s, true)
	mine, err := c.createENI(context.Background(), hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	kept, err := c.settleENI(context.Background(), hostTags, &mine)
	if err != nil {
		t.Fatal(err)
	}
	if kept.ID != "eni-0fffffffffffffff0" {
		t.Fatalf("kept %s, want the older eni-0fffffffffffffff0", kept.ID)
	}
	if enis := s.ENIs(); len(enis) != 1 || enis[0].ID != kept.ID {
		t.Fatalf("ENIs %+v", enis)
	}
}

// Two ENIs of Satellite's left by a start that could not settle: the older is used, none deleted.
func TestEnsureENIPicksOlderOfTwoManaged(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.AddENI(ec2stub.ENI{ID: "eni-0000000000000000a", VPC: vpc, PrivateIP: "10.0.9.11",
		Tags: map[string]string{TagHost: "a100-1", TagManagedBy: ManagedBy, TagCreated: "2024-01-01T00:00:02.000000000Z"}})
	s.AddENI(ec2stub.ENI{ID: "eni-0000000000000000b", VPC: vpc, PrivateIP: "10.0.9.10",
		Tags: map[string]string{TagHost: "a100-1", TagManagedBy: ManagedBy, TagCreated: "2024-01-01T00:00:01.000000000Z"}})
	e, err := testClient(t, s, true).EnsureENI(context.Background(), hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "eni-0000000000000000b" || len(s.ENIs()) != 2 {
		t.Fatalf("picked %s of %d", e.ID, len(s.ENIs()))
	}
}

func TestDeleteENIs(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	ctx := context.Background()
	c := testClient(t, s, true)
	mine, err := c.EnsureENI(ctx, hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	s.AddENI(ec2stub.ENI{ID: "eni-0a1b2c3d4e5f60718", VPC: vpc, PrivateIP: "10.0.9.178", Tags: map[string]string{TagHost: "a100-1"}})

	s.Attach(mine.ID, "i-0123456789abcdef0")
	_, err = c.DeleteENIs(ctx, hostTags)
	want := "ENI " + mine.ID + " is attached to i-0123456789abcdef0: detach it first (aws ec2 detach-network-interface), then delete it again"
	if err == nil || err.Error() != want {
		t.Fatalf("attached: err = %v\nwant  %s", err, want)
	}
	s.Attach(mine.ID, "")
	deleted, err := c.DeleteENIs(ctx, hostTags)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(deleted) != "["+mine.ID+"]" {
		t.Fatalf("deleted %v", deleted)
	}
	if enis := s.ENIs(); len(enis) != 1 || enis[0].ID != "eni-0a1b2c3d4e5f60718" {
		t.Fatalf("left %+v, want only the ENI made by hand", enis)
	}
	if deleted, err := c.DeleteENIs(ctx, hostTags); err != nil || len(deleted) != 0 {
		t.Fatalf("second delete: %v, %v", deleted, err)
	}
}

// An ENI listed but gone by the time it is deleted counts as deleted; an ENI still in use is an
// error that says so.
func TestDeleteENIErrors(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	ctx := context.Background()
	c := testClient(t, s, true)
	mine, err := c.EnsureENI(ctx, hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(ec2stub.Fault{Action: "DeleteNetworkInterface", Times: 1, Status: http.StatusBadRequest,
		Code: "InvalidNetworkInterfaceID.NotFound", Message: "The networkInterface ID '" + mine.ID + "' does not exist"})
	if deleted, err := c.DeleteENIs(ctx, hostTags); err != nil || len(deleted) != 1 {
		t.Fatalf("already gone: %v, %v", deleted, err)
	}
	mine, err = c.EnsureENI(ctx, hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(ec2stub.Fault{Action: "DeleteNetworkInterface", Times: 1, Status: http.StatusBadRequest,
		Code: "InvalidNetworkInterface.InUse", Message: "The network interface " + mine.ID + " is currently in use."})
	_, err = c.DeleteENIs(ctx, hostTags)
	want := "ec2 DeleteNetworkInterface in us-west-2: The network interface " + mine.ID + " is currently in use (InvalidNetworkInterface.InUse): it is attached to an instance: detach it first (aws ec2 detach-network-interface)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	s.Deny("DeleteNetworkInterface")
	_, err = c.DeleteENIs(ctx, hostTags)
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("denied: %v", err)
	}
}

// The cloud provider's Fargate lookup filters on attachment.status=attached: an ENI Satellite
// created is not attached, so the lookup does not find it until it is attached.
func TestFargateLookupNeedsAttachment(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	c := testClient(t, s, true)
	ctx := context.Background()
	e, err := c.EnsureENI(ctx, hostTags, create())
	if err != nil {
		t.Fatal(err)
	}
	lookup := func() int {
		out, err := c.FargateLookup(ctx, vpc, e.PrivateIP)
		if err != nil {
			t.Fatal(err)
		}
		return len(out)
	}
	if n := lookup(); n != 0 || e.Attached {
		t.Fatalf("unattached ENI: lookup found %d, Attached %v", n, e.Attached)
	}
	s.Attach(e.ID, "i-0123456789abcdef0")
	if n := lookup(); n != 1 {
		t.Fatalf("attached ENI: lookup found %d", n)
	}
	reqs := s.Requests("DescribeNetworkInterfaces")
	f := reqs[len(reqs)-1].Form
	if f.Get("Filter.1.Name") != "attachment.status" || f.Get("Filter.2.Name") != "private-ip-address" || f.Get("Filter.3.Name") != "vpc-id" {
		t.Fatalf("lookup filters %v", f)
	}
}
