package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/satellite-vk/satellite/cloud/ec2"
)

// eniOptions are the flags of `satellite eni show` and `satellite eni delete`: the main
// command's ENI flags, so that the same values (or SATELLITE_* variables) name the same ENI.
type eniOptions struct {
	region  string
	ssh     string
	timeout time.Duration
	ec2Config
}

// newENICommand is `satellite eni`: look at the ENI a node is named after, or delete the one
// Satellite created, which Satellite itself never does (a restart must find it again).
func newENICommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eni",
		Short: "Show the ENI a Satellite node is named after, or delete the one Satellite created",
		Args:  cobra.NoArgs,
	}
	var show, del eniOptions
	showCmd := &cobra.Command{
		Use:   "show",
		Short: "Show the ENIs the flags select, the node name each gives, and whether EKS's Fargate lookup finds it",
		Args:  cobra.NoArgs,
		RunE:  eniRunE(getenv, &show, showENIs),
	}
	deleteCmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete the ENI Satellite created for a host (found by --eni-tag, as at start); ENIs it did not create are left alone",
		Long: `Delete the ENI Satellite created for a host, once the host's node is gone (helm uninstall
runs it after the node's drain when hosts[].eni.deleteOnUninstall is set). Only ENIs tagged
` + ec2.TagManagedBy + `=` + ec2.ManagedBy + ` and carrying the --eni-tag tags are deleted; an attached one
is refused.`,
		Args: cobra.NoArgs,
		RunE: eniRunE(getenv, &del, deleteENIs),
	}
	bindENIOptions(showCmd.Flags(), &show)
	bindENIOptions(deleteCmd.Flags(), &del)
	cmd.AddCommand(showCmd, deleteCmd)
	return cmd
}

func bindENIOptions(fs *pflag.FlagSet, o *eniOptions) {
	fs.StringVar(&o.region, "region", "", "AWS region of the cluster and its ENIs")
	fs.StringVar(&o.ssh, "ssh", "", "the host, user@host[:port]: with no --eni-tag, the ENI is the one tagged "+ec2.TagHost+"=<host>")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "give up after this long")
	bindENIFlags(fs, &o.ec2Config)
}

func eniRunE(getenv func(string) string, o *eniOptions, run func(context.Context, *ec2.Client, *eniOptions, io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags(), getenv); err != nil {
			return err
		}
		if err := o.complete(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
		defer cancel()
		client, err := o.client(ctx, o.region)
		if err != nil {
			return err
		}
		return run(ctx, client, o, cmd.OutOrStdout())
	}
}

func (o *eniOptions) complete() error {
	var err error
	if o.region == "" {
		return errors.New("--region is required")
	}
	if o.ENISubnet != "" || len(o.ENIGroups) > 0 {
		return errors.New("--eni-subnet and --eni-security-groups create an ENI; `satellite eni` never does")
	}
	if o.eniTags, err = parseTags("--eni-tag", o.ENITags); err != nil {
		return err
	}
	if o.ENIID != "" && len(o.eniTags) > 0 {
		return errors.New("--eni-id and --eni-tag exclude each other")
	}
	if o.ENIID == "" && len(o.eniTags) == 0 {
		if o.ssh == "" {
			return errors.New("--eni-id, --eni-tag or --ssh is required to find the ENI")
		}
		_, addr, err := parseSSHTarget(o.ssh)
		if err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(addr)
		o.eniTags = map[string]string{ec2.TagHost: host}
	}
	return nil
}

func showENIs(ctx context.Context, client *ec2.Client, o *eniOptions, out io.Writer) error {
	var enis []ec2.ENI
	if o.ENIID != "" {
		e, err := client.ENIByID(ctx, o.ENIID)
		if err != nil {
			return err
		}
		enis = []ec2.ENI{e}
	} else {
		var err error
		if enis, err = client.FindENIs(ctx, o.eniTags); err != nil {
			return err
		}
		if len(enis) == 0 {
			return fmt.Errorf("no ENI in %s carries the tags %s", o.region, ec2.FormatTags(o.eniTags))
		}
	}
	for _, e := range enis {
		found, err := client.FargateLookup(ctx, e.VPC, e.PrivateIP)
		if err != nil {
			return err
		}
		name, err := ec2.FargateNodeName(e.PrivateIP, o.region)
		if err != nil {
			return err
		}
		fmt.Fprint(out, describeENI(e, name, len(found)))
	}
	return nil
}

// describeENI says what an ENI means for the node named after it.
func describeENI(e ec2.ENI, nodeName string, lookup int) string {
	var b strings.Builder
	attached, made := "not attached", "made outside Satellite"
	if e.Attached {
		attached = "attached to " + e.Instance
	}
	if e.Managed() {
		made = "created by Satellite (" + ec2.TagCreated + "=" + e.Tags[ec2.TagCreated] + ")"
	}
	fmt.Fprintf(&b, "%s  %s  %s  %s  %s  %s, %s\n", e.ID, e.PrivateIP, e.VPC, e.Subnet, e.AZ, attached, made)
	fmt.Fprintf(&b, "  node name: %s\n", nodeName)
	fmt.Fprintf(&b, "  EKS's lookup (vpc-id=%s private-ip-address=%s attachment.status=attached): %d ENI", e.VPC, e.PrivateIP, lookup)
	if lookup == 1 {
		b.WriteString(": the node is kept while it is NotReady (if " + e.VPC + " is the cluster's VPC)\n")
	} else {
		b.WriteString("s: the node is deleted, with its pods, whenever it is NotReady; attach the ENI to an instance in " + e.AZ + " (docs/eks.md)\n")
	}
	return b.String()
}

func deleteENIs(ctx context.Context, client *ec2.Client, o *eniOptions, out io.Writer) error {
	if o.ENIID != "" {
		return errors.New("`satellite eni delete` finds the ENI by --eni-tag (or --ssh), as Satellite found it; an ENI given by --eni-id was not made by Satellite")
	}
	deleted, err := client.DeleteENIs(ctx, o.eniTags)
	for _, id := range deleted {
		fmt.Fprintf(out, "deleted %s\n", id)
	}
	if err != nil {
		return err
	}
	if len(deleted) == 0 {
		fmt.Fprintf(out, "no ENI created by Satellite carries the tags %s in %s: nothing to delete\n", ec2.FormatTags(o.eniTags), o.region)
	}
	return nil
}
