package ec2

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/virtual-kubelet/virtual-kubelet/log"
)

// AddressType says which of an instance's addresses Satellite dials.
type AddressType string

const (
	// PublicAddress is the instance's public IPv4 address: a host outside the cluster's VPC.
	// It changes when the instance is stopped and started, unless it is an Elastic IP.
	PublicAddress AddressType = "public"
	// PrivateAddress is its primary private IPv4 address: a host reached through peering, a
	// transit gateway or a VPN.
	PrivateAddress AddressType = "private"
)

// ParseAddressType reads "public" or "private".
func ParseAddressType(s string) (AddressType, error) {
	switch t := AddressType(s); t {
	case PublicAddress, PrivateAddress:
		return t, nil
	}
	return "", fmt.Errorf("%q: want public or private", s)
}

// InstanceSelector picks one instance: by ID, or as the one instance not terminated that
// carries every one of Tags.
type InstanceSelector struct {
	ID   string
	Tags map[string]string
}

func (s InstanceSelector) String() string {
	if s.ID != "" {
		return s.ID
	}
	return "tagged " + FormatTags(s.Tags)
}

// Instance is what Satellite needs of an EC2 instance.
type Instance struct {
	ID, State, PrivateIP, PublicIP string
	// Type is the instance type (p4d.24xlarge), Zone its Availability Zone (us-west-2a).
	Type, Zone string
}

// Address is the instance's address of type t, or an error saying why it has none.
func (i Instance) Address(t AddressType) (string, error) {
	if i.State != string(types.InstanceStateNameRunning) {
		return "", fmt.Errorf("instance %s is %s, not running: start it (aws ec2 start-instances --instance-ids %s)", i.ID, i.State, i.ID)
	}
	switch {
	case t == PrivateAddress && i.PrivateIP != "":
		return i.PrivateIP, nil
	case t == PublicAddress && i.PublicIP != "":
		return i.PublicIP, nil
	case t == PublicAddress:
		return "", fmt.Errorf("instance %s has no public IPv4 address: give it one (an Elastic IP keeps it across stop and start) or reach it by its private address", i.ID)
	}
	return "", fmt.Errorf("instance %s has no private IPv4 address", i.ID)
}

// Instance describes the instance sel picks.
func (c *Client) Instance(ctx context.Context, sel InstanceSelector) (Instance, error) {
	in := &sdk.DescribeInstancesInput{}
	if sel.ID != "" {
		in.InstanceIds = []string{sel.ID}
	} else {
		in.Filters = append(tagFilters(sel.Tags), types.Filter{Name: aws.String("instance-state-name"),
			Values: []string{"pending", "running", "stopping", "stopped"}})
	}
	var found []Instance
	for p := sdk.NewDescribeInstancesPaginator(c.api, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return Instance{}, c.translate("DescribeInstances", err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				found = append(found, instanceFrom(i))
			}
		}
	}
	switch {
	case len(found) == 0:
		return Instance{}, &Error{Action: "DescribeInstances", kind: ErrNotFound,
			text: fmt.Sprintf("no instance in %s that is not terminated carries the tags %s: check the tags and the instance's region", c.region, FormatTags(sel.Tags))}
	case len(found) > 1:
		var ids []string
		for _, i := range found {
			ids = append(ids, i.ID)
		}
		return Instance{}, fmt.Errorf("%d instances in %s carry the tags %s (%s): give the instance's ID, or tags only one of them carries",
			len(found), c.region, FormatTags(sel.Tags), strings.Join(ids, ", "))
	case found[0].State == string(types.InstanceStateNameTerminated):
		return Instance{}, &Error{Action: "DescribeInstances", kind: ErrNotFound,
			text: fmt.Sprintf("instance %s in %s is terminated: point Satellite at the host's new instance", found[0].ID, c.region)}
	}
	return found[0], nil
}

func instanceFrom(i types.Instance) Instance {
	out := Instance{ID: aws.ToString(i.InstanceId), PrivateIP: aws.ToString(i.PrivateIpAddress), PublicIP: aws.ToString(i.PublicIpAddress),
		Type: string(i.InstanceType)}
	if i.Placement != nil {
		out.Zone = aws.ToString(i.Placement.AvailabilityZone)
	}
	if i.State != nil {
		out.State = string(i.State.Name)
	}
	return out
}

// AddressResolver answers the SSH address of a host that is an EC2 instance, for
// remote.Config.Resolve: the instance's current address, so that after a stop and start (a new
// public IP) the next connection goes to the new one. It asks EC2 at most once per interval,
// answering the last result in between, so a host that stays down costs one DescribeInstances
// call per interval however often the connection is retried.
type AddressResolver struct {
	client   *Client
	sel      InstanceSelector
	typ      AddressType
	port     string
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex
	inst   Instance // as last described
	addr   string
	err    error
	asked  time.Time
	called bool
}

// AddressResolver resolves sel's address of type typ, with port appended.
func (c *Client) AddressResolver(sel InstanceSelector, typ AddressType, port string) *AddressResolver {
	return &AddressResolver{client: c, sel: sel, typ: typ, port: port, interval: 10 * time.Second, now: time.Now}
}

// Instance is the instance as last described, and whether it ever was.
func (r *AddressResolver) Instance() (Instance, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inst, r.inst.ID != ""
}

// Resolve returns host:port to dial now.
func (r *AddressResolver) Resolve(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.called && r.now().Sub(r.asked) < r.interval {
		if r.err != nil {
			return "", r.err
		}
		return r.addr, nil
	}
	inst, err := r.client.Instance(ctx, r.sel)
	var ip string
	if err == nil {
		r.inst = inst
		ip, err = inst.Address(r.typ)
	}
	if err != nil && ctx.Err() != nil {
		return "", err // this caller gave up; the next one asks again
	}
	r.called, r.asked = true, r.now()
	if err != nil {
		r.err = err
		return "", err
	}
	addr := net.JoinHostPort(ip, r.port)
	if r.addr != "" && addr != r.addr {
		log.G(ctx).WithField("instance", inst.ID).WithField("old", r.addr).WithField("new", addr).Info("the host's address changed")
	}
	r.addr, r.err = addr, nil
	return addr, nil
}
