package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/spf13/pflag"
	"github.com/virtual-kubelet/virtual-kubelet/log"

	"github.com/satellite-vk/satellite/cloud/ec2"
)

// ec2Config is what the command line says of the node's ENI and of a host that is an EC2
// instance. The flags are bound by bindEC2Flags and checked by completeEC2.
type ec2Config struct {
	ENIID          string
	ENITags        []string
	ENISubnet      string
	ENIGroups      []string
	InstanceID     string
	InstanceTags   []string
	AddressType    string
	InstanceRegion string
	Endpoint       string

	eniTags      map[string]string
	instanceTags map[string]string
	addressType  ec2.AddressType
}

func bindEC2Flags(fs *pflag.FlagSet, c *ec2Config) {
	bindENIFlags(fs, c)
	fs.StringVar(&c.InstanceID, "host-instance-id", "", "the host is this EC2 instance: its address is looked up (ec2:DescribeInstances) before each SSH connection, so a stop and start with a new public IP is followed; the --ssh host then only names the host key in known_hosts")
	fs.StringSliceVar(&c.InstanceTags, "host-instance-tag", nil, "the host is the one EC2 instance not terminated that carries these tags, key=value, comma-separated (as --host-instance-id)")
	fs.StringVar(&c.AddressType, "host-address-type", string(ec2.PublicAddress), "which address of the host's instance Satellite dials: public or private")
	fs.StringVar(&c.InstanceRegion, "host-instance-region", "", "AWS region of the host's instance; empty: --region")
}

// bindENIFlags binds the flags that name the node's ENI, and the EC2 endpoint.
func bindENIFlags(fs *pflag.FlagSet, c *ec2Config) {
	fs.StringVar(&c.Endpoint, "ec2-endpoint", "", "EC2 API endpoint URL instead of the region's (a VPC interface endpoint, or a stand-in in tests)")
	fs.StringVar(&c.ENIID, "eni-id", "", "ID of an existing ENI in the cluster's VPC (in --region) whose private IPv4 address names the node")
	fs.StringSliceVar(&c.ENITags, "eni-tag", nil, "find the node's ENI by these tags, key=value, comma-separated (all must match, exactly one ENI); with --eni-subnet and no --eni-tag: "+ec2.TagHost+"=<the --ssh host>")
	fs.StringVar(&c.ENISubnet, "eni-subnet", "", "when no ENI carries the --eni-tag tags, create one in this subnet of the cluster's VPC, tagged so that every later start finds and reuses it (never a second); it is deleted only by satellite eni delete")
	fs.StringSliceVar(&c.ENIGroups, "eni-security-groups", nil, "security groups of an ENI Satellite creates, comma-separated (nothing is ever sent to its address: a group with no inbound rules)")
}

// eniLookup reports whether the node's name comes from an ENI Satellite looks up or creates.
func (c *ec2Config) eniLookup() bool {
	return c.ENIID != "" || len(c.ENITags) > 0 || c.ENISubnet != ""
}

// instanceLookup reports whether the host's address comes from EC2.
func (c *ec2Config) instanceLookup() bool {
	return c.InstanceID != "" || len(c.InstanceTags) > 0
}

// completeEC2 checks the EC2 flags against each other and the rest of the configuration.
func (c *config) completeEC2() error {
	e := &c.ec2Config
	var err error
	if e.eniTags, err = parseTags("--eni-tag", e.ENITags); err != nil {
		return err
	}
	if e.instanceTags, err = parseTags("--host-instance-tag", e.InstanceTags); err != nil {
		return err
	}
	if e.addressType, err = ec2.ParseAddressType(e.AddressType); err != nil {
		return fmt.Errorf("--host-address-type %w", err)
	}
	if e.Endpoint != "" {
		if u, err := url.Parse(e.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--ec2-endpoint %q: want an http(s) URL", e.Endpoint)
		}
	}
	if err := e.checkENI(c.NodeName, c.ENIIP, c.Region); err != nil {
		return err
	}
	if e.ENISubnet != "" && len(e.eniTags) == 0 {
		host, _, _ := net.SplitHostPort(c.SSHAddr)
		e.eniTags = map[string]string{ec2.TagHost: host}
	}
	switch {
	case e.InstanceID != "" && len(e.instanceTags) > 0:
		return errors.New("--host-instance-id and --host-instance-tag exclude each other")
	case e.instanceLookup() && e.InstanceRegion == "" && c.Region == "":
		return errors.New("--host-instance-id or --host-instance-tag needs --host-instance-region or --region")
	case e.InstanceRegion == "":
		e.InstanceRegion = c.Region
	}
	return nil
}

func (e *ec2Config) checkENI(nodeName, eniIP, region string) error {
	switch {
	case !e.eniLookup():
		if len(e.ENIGroups) > 0 {
			return errors.New("--eni-security-groups goes with --eni-subnet")
		}
		return nil
	case nodeName != "" || eniIP != "":
		return errors.New("--node-name or --eni-ip, and --eni-id, --eni-tag or --eni-subnet, exclude each other: give one way to name the node")
	case region == "":
		return errors.New("--region is required to look the node's ENI up")
	case e.ENIID != "" && (len(e.eniTags) > 0 || e.ENISubnet != ""):
		return errors.New("--eni-id names one ENI: it excludes --eni-tag and --eni-subnet")
	case e.ENISubnet != "" && len(e.ENIGroups) == 0:
		return errors.New("--eni-subnet needs --eni-security-groups: a group with no inbound rules (nothing is ever sent to the ENI's address)")
	case e.ENISubnet == "" && len(e.ENIGroups) > 0:
		return errors.New("--eni-security-groups goes with --eni-subnet")
	}
	return nil
}

// parseTags reads key=value pairs.
func parseTags(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	tags := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not key=value", flag, kv)
		}
		tags[k] = v
	}
	return tags, nil
}

// ec2Client is a client for region, with credentials from the SDK's default chain (IRSA, Pod
// Identity, the environment).
func (e *ec2Config) client(ctx context.Context, region string) (*ec2.Client, error) {
	return ec2.NewClient(ctx, ec2.Config{Region: region, Endpoint: e.Endpoint})
}

// resolveEC2 names the node after its ENI and sets up the host's address lookup, as the flags
// ask. It returns the remote.Config.Resolve for the host, nil when the host has a fixed address.
func (c *config) resolveEC2(ctx context.Context) (func(context.Context) (string, error), error) {
	e := &c.ec2Config
	if e.eniLookup() {
		client, err := e.client(ctx, c.Region)
		if err != nil {
			return nil, err
		}
		eni, err := e.nodeENI(ctx, client)
		if err != nil {
			return nil, err
		}
		if c.NodeName, err = ec2.FargateNodeName(eni.PrivateIP, c.Region); err != nil {
			return nil, err
		}
		c.ENIIP = eni.PrivateIP
		logENI(ctx, eni, c.NodeName)
	}
	if !e.instanceLookup() {
		return nil, nil
	}
	client, err := e.client(ctx, e.InstanceRegion)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(c.SSHAddr)
	r := client.AddressResolver(ec2.InstanceSelector{ID: e.InstanceID, Tags: e.instanceTags}, e.addressType, port)
	addr, err := r.Resolve(ctx)
	switch {
	case err != nil && c.HostIP == "":
		return nil, fmt.Errorf("the host's address, for pods' hostIP (or give --host-ip): %w", err)
	case err != nil:
		log.G(ctx).WithError(err).Warn("cannot reach the host's instance yet; retrying with every connection")
	case c.HostIP == "":
		c.HostIP, _, _ = net.SplitHostPort(addr)
	}
	if inst, ok := r.Instance(); ok {
		c.placeOn(inst, e.InstanceRegion)
	} else {
		log.G(ctx).Warn("the host's instance could not be described at start: the node has no instance-type and zone labels unless --instance-type and --zone give them")
	}
	return r.Resolve, nil
}

// placeOn fills the placement the flags leave empty from the host's instance.
func (c *config) placeOn(inst ec2.Instance, region string) {
	for _, f := range []struct {
		field *string
		value string
	}{{&c.InstanceType, inst.Type}, {&c.Zone, inst.Zone}, {&c.TopologyRegion, region}, {&c.HostProvider, "aws"}} {
		if *f.field == "" {
			*f.field = f.value
		}
	}
}

// nodeENI finds (or creates) the ENI the flags name, and says which flags to fix when it fails.
func (e *ec2Config) nodeENI(ctx context.Context, client *ec2.Client) (ec2.ENI, error) {
	if e.ENIID != "" {
		eni, err := client.ENIByID(ctx, e.ENIID)
		if err != nil {
			return ec2.ENI{}, fmt.Errorf("--eni-id %s: %w", e.ENIID, err)
		}
		return eni, nil
	}
	var create *ec2.ENICreate
	if e.ENISubnet != "" {
		create = &ec2.ENICreate{Subnet: e.ENISubnet, SecurityGroups: e.ENIGroups,
			Description: "Satellite node " + ec2.FormatTags(e.eniTags) + ": holds the address its node is named after"}
	}
	eni, err := client.EnsureENI(ctx, e.eniTags, create)
	if err != nil {
		flags := "--eni-tag " + ec2.FormatTags(e.eniTags)
		if create != nil {
			flags += " --eni-subnet " + e.ENISubnet + " --eni-security-groups " + strings.Join(e.ENIGroups, ",")
		}
		return ec2.ENI{}, fmt.Errorf("%s: %w", flags, err)
	}
	return eni, nil
}

// logENI says which ENI names the node, and warns when EKS would not find it.
func logENI(ctx context.Context, eni ec2.ENI, nodeName string) {
	l := log.G(ctx).WithField("eni", eni.ID).WithField("ip", eni.PrivateIP).WithField("vpc", eni.VPC).WithField("nodeName", nodeName)
	if eni.Attached {
		l.Info("node named after its ENI")
		return
	}
	l.Warn("the node's ENI is not attached to an instance: while the node is NotReady, EKS looks it up with attachment.status=attached, finds nothing and deletes the node with its pods; attach the ENI to an instance in its Availability Zone (docs/eks.md)")
}
