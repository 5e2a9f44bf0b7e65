package ec2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Tags Satellite reads and writes on ENIs.
const (
	// TagHost is the tag Satellite looks an ENI up by when told nothing else: the host's name.
	TagHost = "satellite.dev/host"
	// TagManagedBy=ManagedBy marks an ENI Satellite created; it deletes no other. IAM
	// conditions can key on it (docs/eks.md).
	TagManagedBy = "satellite.dev/managed-by"
	ManagedBy    = "satellite"
	// TagCreated is the creation time of an ENI Satellite created, in createdLayout: of two
	// made by Satellites that started at once, both keep the older.
	TagCreated = "satellite.dev/created"
	// tagNoManage keeps the VPC CNI's hands off the ENI if it is attached to one of the
	// cluster's nodes (amazon-vpc-cni-k8s honours node.k8s.amazonaws.com/no_manage=true).
	tagNoManage = "node.k8s.amazonaws.com/no_manage"
)

// createdLayout is fixed-width, so that creation times sort as strings.
const createdLayout = "2006-01-02T15:04:05.000000000Z"

// ENI is a network interface, as far as naming a node goes.
type ENI struct {
	ID, PrivateIP, VPC, Subnet, AZ string
	// Attached is attachment.status=attached, which the cloud provider's Fargate lookup
	// requires. An ENI that is not attached has no attachment at all.
	Attached bool
	Instance string // the instance it is attached to
	Tags     map[string]string
}

// Managed reports whether Satellite created the ENI (and so may delete it).
func (e ENI) Managed() bool { return e.Tags[TagManagedBy] == ManagedBy }

// ENICreate says where Satellite makes an ENI when none carries the tags it looks for.
type ENICreate struct {
	Subnet         string
	SecurityGroups []string
	Description    string
}

// ENIByID describes one ENI.
func (c *Client) ENIByID(ctx context.Context, id string) (ENI, error) {
	out, err := c.api.DescribeNetworkInterfaces(ctx, &sdk.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil {
		return ENI{}, c.translate("DescribeNetworkInterfaces", err)
	}
	if len(out.NetworkInterfaces) != 1 {
		return ENI{}, &Error{Action: "DescribeNetworkInterfaces", kind: ErrNotFound,
			text: fmt.Sprintf("ec2 DescribeNetworkInterfaces in %s: ENI %s: %d answers, want 1", c.region, id, len(out.NetworkInterfaces))}
	}
	return eniFrom(out.NetworkInterfaces[0]), nil
}

// FindENIs lists the ENIs that carry every one of tags, oldest Satellite-made first.
func (c *Client) FindENIs(ctx context.Context, tags map[string]string) ([]ENI, error) {
	if len(tags) == 0 {
		return nil, errors.New("ec2: looking ENIs up by tags needs at least one tag")
	}
	in := &sdk.DescribeNetworkInterfacesInput{Filters: tagFilters(tags)}
	var enis []ENI
	for p := sdk.NewDescribeNetworkInterfacesPaginator(c.api, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.translate("DescribeNetworkInterfaces", err)
		}
		for _, ni := range out.NetworkInterfaces {
			enis = append(enis, eniFrom(ni))
		}
	}
	sort.Slice(enis, func(i, j int) bool { return older(enis[i], enis[j]) })
	return enis, nil
}

// FargateLookup runs the query the AWS cloud provider runs for a NotReady node named
// fargate-ip-<ip>...: the ENIs in the cluster's VPC with that private address and
// attachment.status=attached. It keeps the node only while exactly one answers.
func (c *Client) FargateLookup(ctx context.Context, vpc, ip string) ([]ENI, error) {
	in := &sdk.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.status"), Values: []string{"attached"}},
		{Name: aws.String("private-ip-address"), Values: []string{ip}},
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
	}}
	out, err := c.api.DescribeNetworkInterfaces(ctx, in)
	if err != nil {
		return nil, c.translate("DescribeNetworkInterfaces", err)
	}
	var enis []ENI
	for _, ni := range out.NetworkInterfaces {
		enis = append(enis, eniFrom(ni))
	}
	return enis, nil
}

// EnsureENI returns the one ENI carrying every one of tags. When there is none and create is
// set, it creates it in create's subnet with tags (and TagManagedBy, TagCreated), so that the
// next start finds the same ENI instead of making another: one host, one ENI, one node name
// for good.
//
// Two Satellites starting at once for the same tags both create one; each then looks again and
// keeps the older, and the younger's Satellite deletes its own. That holds once EC2's listing
// shows both (it is eventually consistent; settle is the wait for it).
func (c *Client) EnsureENI(ctx context.Context, tags map[string]string, create *ENICreate) (ENI, error) {
	found, err := c.FindENIs(ctx, tags)
	if err != nil {
		return ENI{}, err
	}
	switch {
	case young(found):
		// Another Satellite may be settling right now: watch with it, and agree.
		return c.settleENI(ctx, tags, nil)
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return c.pickOne(ctx, tags, found)
	case create == nil:
		return ENI{}, &Error{Action: "DescribeNetworkInterfaces", kind: ErrNotFound,
			text: fmt.Sprintf("no ENI in %s carries the tags %s: tag the node's ENI so, or give a subnet and security groups for Satellite to create it", c.region, FormatTags(tags))}
	}
	mine, err := c.createENI(ctx, tags, create)
	if err != nil {
		return ENI{}, err
	}
	log.G(ctx).WithField("eni", mine.ID).WithField("ip", mine.PrivateIP).WithField("subnet", mine.Subnet).Info("created the node's ENI")
	return c.settleENI(ctx, tags, &mine)
}

// youngAge is how long after its creation an ENI may still lose to an older twin.
const youngAge = time.Minute

// young reports whether one of enis is Satellite's and created moments ago.
func young(enis []ENI) bool {
	for _, e := range enis {
		t, err := time.Parse(createdLayout, e.Tags[TagCreated])
		if e.Managed() && err == nil && time.Since(t) < youngAge {
			return true
		}
	}
	return false
}

// pickOne chooses among several ENIs carrying the tags: they must all be Satellite's (the
// leftover of a start that could not settle), and the oldest is kept. ENIs made by hand with
// the same tags are ambiguous, and Satellite will not guess.
func (c *Client) pickOne(ctx context.Context, tags map[string]string, found []ENI) (ENI, error) {
	var ids []string
	managed := true
	for _, e := range found {
		ids = append(ids, e.ID)
		managed = managed && e.Managed()
	}
	if !managed {
		sort.Strings(ids)
		return ENI{}, fmt.Errorf("%d ENIs in %s carry the tags %s (%s): give the ENI's ID, or tags only one of them carries",
			len(found), c.region, FormatTags(tags), strings.Join(ids, ", "))
	}
	log.G(ctx).WithField("eni", found[0].ID).WithField("unused", strings.Join(ids[1:], ",")).
		Warn("several ENIs Satellite created carry this host's tags; using the oldest. Delete the others with aws ec2 delete-network-interface")
	return found[0], nil
}

func (c *Client) createENI(ctx context.Context, tags map[string]string, create *ENICreate) (ENI, error) {
	all := map[string]string{TagManagedBy: ManagedBy, TagCreated: time.Now().UTC().Format(createdLayout), tagNoManage: "true"}
	for k, v := range tags {
		all[k] = v
	}
	in := &sdk.CreateNetworkInterfaceInput{
		SubnetId:    aws.String(create.Subnet),
		Groups:      create.SecurityGroups,
		Description: aws.String(create.Description),
		// Tagged in the same call, so no ENI of Satellite's is ever without its tags. The
		// SDK fills ClientToken and keeps it across its retries: a retried create whose
		// first answer was lost returns the same ENI rather than a second one.
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: sdkTags(all)}},
	}
	out, err := c.api.CreateNetworkInterface(ctx, in)
	if err != nil {
		return ENI{}, c.translate("CreateNetworkInterface", err)
	}
	return eniFrom(*out.NetworkInterface), nil
}

// settleENI looks for ENIs made at the same time for the same tags and settles on the oldest
// Satellite-made one: mine (nil when this Satellite made none) is deleted as soon as an older
// one shows, and the answer is the one found oldest in two looks in a row, settle apart. A
// Satellite whose first look showed only its own ENI thus still gives way to an older one
// whose create EC2 applied later.
func (c *Client) settleENI(ctx context.Context, tags map[string]string, mine *ENI) (ENI, error) {
	var chosen ENI
	mineAlive, stable := mine != nil, 0
	if mineAlive {
		chosen = *mine
	}
	for range 10 {
		if err := sleep(ctx, c.settle); err != nil {
			return ENI{}, fmt.Errorf("settle on the host's ENI: %w", err)
		}
		found, err := c.FindENIs(ctx, tags)
		if err != nil {
			return ENI{}, err
		}
		var managed []ENI
		for _, e := range found {
			if e.Managed() && (mineAlive || mine == nil || e.ID != mine.ID) {
				managed = append(managed, e)
			}
		}
		if len(managed) == 0 || mineAlive && !hasID(managed, mine.ID) {
			stable = 0
			continue // not listed yet
		}
		oldest := managed[0]
		if mineAlive && oldest.ID != mine.ID {
			log.G(ctx).WithField("eni", oldest.ID).WithField("deleted", mine.ID).Info("another Satellite created this host's ENI first; using it and deleting mine")
			if err := c.deleteENI(ctx, mine.ID); err != nil {
				return ENI{}, err
			}
			mineAlive = false
		}
		if oldest.ID == chosen.ID {
			stable++
		} else {
			chosen, stable = oldest, 1
		}
		if stable == 2 {
			break
		}
	}
	if chosen.ID == "" {
		return ENI{}, fmt.Errorf("ENIs tagged %s in %s came and went while Satellite settled on one: start again", FormatTags(tags), c.region)
	}
	return chosen, nil
}

func hasID(enis []ENI, id string) bool {
	for _, e := range enis {
		if e.ID == id {
			return true
		}
	}
	return false
}

// DeleteENIs deletes the ENIs Satellite created that carry every one of tags, and returns
// their IDs. ENIs it did not create are left alone; one that is attached is an error. An ENI
// already gone counts as deleted.
func (c *Client) DeleteENIs(ctx context.Context, tags map[string]string) ([]string, error) {
	found, err := c.FindENIs(ctx, tags)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, e := range found {
		if !e.Managed() {
			log.G(ctx).WithField("eni", e.ID).Info("not deleting an ENI Satellite did not create")
			continue
		}
		if e.Attached {
			return deleted, fmt.Errorf("ENI %s is attached to %s: detach it first (aws ec2 detach-network-interface), then delete it again", e.ID, e.Instance)
		}
		if err := c.deleteENI(ctx, e.ID); err != nil {
			return deleted, err
		}
		deleted = append(deleted, e.ID)
	}
	return deleted, nil
}

func (c *Client) deleteENI(ctx context.Context, id string) error {
	_, err := c.api.DeleteNetworkInterface(ctx, &sdk.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
	if err == nil {
		return nil
	}
	err = c.translate("DeleteNetworkInterface", err)
	if errors.Is(err, ErrNotFound) {
		return nil // already gone, which is what was asked
	}
	return err
}

func eniFrom(ni types.NetworkInterface) ENI {
	e := ENI{
		ID: aws.ToString(ni.NetworkInterfaceId), PrivateIP: aws.ToString(ni.PrivateIpAddress),
		VPC: aws.ToString(ni.VpcId), Subnet: aws.ToString(ni.SubnetId), AZ: aws.ToString(ni.AvailabilityZone),
		Tags: map[string]string{},
	}
	if a := ni.Attachment; a != nil {
		e.Attached = a.Status == types.AttachmentStatusAttached
		e.Instance = aws.ToString(a.InstanceId)
	}
	for _, t := range ni.TagSet {
		e.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return e
}

// older orders Satellite's ENIs by creation, then others, each by ID.
func older(a, b ENI) bool {
	ca, cb := a.Tags[TagCreated], b.Tags[TagCreated]
	if a.Managed() != b.Managed() {
		return a.Managed()
	}
	if ca != cb {
		return ca < cb
	}
	return a.ID < b.ID
}

func tagFilters(tags map[string]string) []types.Filter {
	var fs []types.Filter
	for _, k := range sets.List(sets.KeySet(tags)) {
		fs = append(fs, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	return fs
}

func sdkTags(tags map[string]string) []types.Tag {
	var out []types.Tag
	for _, k := range sets.List(sets.KeySet(tags)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// FormatTags shows tags as k=v,k=v, by key.
func FormatTags(tags map[string]string) string {
	var kv []string
	for _, k := range sets.List(sets.KeySet(tags)) {
		kv = append(kv, k+"="+tags[k])
	}
	return strings.Join(kv, ",")
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
