package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/satellite-vk/satellite/cloud/ec2"
	"github.com/satellite-vk/satellite/test/ec2stub"
)

var mainBase = []string{"--ssh", "root@192.0.2.1", "--ssh-key", "k", "--known-hosts", "kh", "--node-ip", "10.0.0.1",
	"--tls-cert-file", "c", "--tls-private-key-file", "k", "--client-ca-file", "ca"}

func parseMain(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	var c config
	var v flagValues
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	bindFlags(fs, &c, &v)
	if err := fs.Parse(append(append([]string{}, mainBase...), args...)); err != nil {
		t.Fatal(err)
	}
	return &c, c.complete(&v)
}

func TestCompleteEC2Errors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--eni-id", "eni-0a1b2c3d4e5f60718"}, "--region is required to look the node's ENI up"},
		{[]string{"--region", "us-west-2", "--eni-id", "eni-0a1b2c3d4e5f60718", "--node-name", "n"}, "--node-name or --eni-ip, and --eni-id, --eni-tag or --eni-subnet, exclude each other: give one way to name the node"},
		{[]string{"--region", "us-west-2", "--eni-id", "eni-0a1b2c3d4e5f60718", "--eni-ip", "10.0.9.178"}, "exclude each other"},
		{[]string{"--region", "us-west-2", "--eni-id", "eni-0a1b2c3d4e5f60718", "--eni-tag", "a=b"}, "--eni-id names one ENI: it excludes --eni-tag and --eni-subnet"},
		{[]string{"--region", "us-west-2", "--eni-subnet", "subnet-0123456789abcdef0"}, "--eni-subnet needs --eni-security-groups: a group with no inbound rules (nothing is ever sent to the ENI's address)"},
		{[]string{"--region", "us-west-2", "--eni-tag", "a=b", "--eni-security-groups", "sg-1"}, "--eni-security-groups goes with --eni-subnet"},
		{[]string{"--node-name", "n", "--eni-security-groups", "sg-1"}, "--eni-security-groups goes with --eni-subnet"},
		{[]string{"--region", "us-west-2", "--eni-tag", "novalue"}, `--eni-tag: "novalue" is not key=value`},
		{[]string{"--node-name", "n", "--host-instance-tag", "=x"}, `--host-instance-tag: "=x" is not key=value`},
		{[]string{"--node-name", "n", "--host-instance-id", "i-0123456789abcdef0"}, "--host-instance-id or --host-instance-tag needs --host-instance-region or --region"},
		{[]string{"--node-name", "n", "--region", "us-west-2", "--host-instance-id", "i-1", "--host-instance-tag", "a=b"}, "--host-instance-id and --host-instance-tag exclude each other"},
		{[]string{"--node-name", "n", "--host-address-type", "elastic"}, `--host-address-type "elastic": want public or private`},
		{[]string{"--node-name", "n", "--ec2-endpoint", "localhost:4566"}, `--ec2-endpoint "localhost:4566": want an http(s) URL`},
		{nil, "--node-name, or --eni-ip and --region to derive it (or --eni-id, --eni-tag or --eni-subnet), is required"},
	} {
		_, err := parseMain(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}

// With --host-instance-id, the --ssh host need not be an IP address: it names the host key, and
// the address (and pods' hostIP) comes from EC2 at start.
func TestCompleteEC2Defaults(t *testing.T) {
	t.Parallel()
	c, err := parseMain(t, "--region", "us-east-1", "--ssh", "root@i-0123456789abcdef0", "--host-instance-id", "i-0123456789abcdef0",
		"--eni-subnet", "subnet-0123456789abcdef0", "--eni-security-groups", "sg-1,sg-2")
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "" || c.HostIP != "" || c.InstanceRegion != "us-east-1" || c.addressType != "public" {
		t.Errorf("node %q host IP %q region %q address %q", c.NodeName, c.HostIP, c.InstanceRegion, c.addressType)
	}
	if ec2.FormatTags(c.eniTags) != "satellite.dev/host=i-0123456789abcdef0" || len(c.ENIGroups) != 2 {
		t.Errorf("ENI tags %v groups %v", c.eniTags, c.ENIGroups)
	}
}

// stubEnv points the SDK's default credential chain at static credentials and nothing of this
// machine's AWS setup, as a pod's environment would with IRSA's variables.
func stubEnv(t *testing.T) *ec2stub.Server {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASATELLITETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_PROFILE", "")
	s := ec2stub.New(t)
	s.AddSubnet("subnet-0123456789abcdef0", "vpc-0aaaaaaaaaaaaaaa0", "us-west-2a", "10.0.9.0/24")
	s.AddENI(ec2stub.ENI{ID: "eni-0a1b2c3d4e5f60718", VPC: "vpc-0aaaaaaaaaaaaaaa0", Subnet: "subnet-0123456789abcdef0", AZ: "us-west-2a",
		PrivateIP: "10.0.9.178", Instance: "i-0fffffffffffffff0",
		Tags: map[string]string{"satellite.dev/host": "a100-1", "satellite.dev/managed-by": "satellite", "satellite.dev/created": "2024-05-01T10:00:00.000000000Z"}})
	s.SetInstance(ec2stub.Instance{ID: "i-0123456789abcdef0", State: "running", PrivateIP: "172.31.5.9", PublicIP: "198.51.100.21",
		Type: "g5.xlarge", Zone: "us-west-2c"})
	return s
}

// From the flags to the node name and the host's address, through the real SDK client and its
// default credential chain.
func TestResolveEC2(t *testing.T) {
	s := stubEnv(t)
	c, err := parseMain(t, "--region", "us-west-2", "--ec2-endpoint", s.URL, "--ssh", "root@i-0123456789abcdef0:2222",
		"--eni-tag", "satellite.dev/host=a100-1", "--host-instance-id", "i-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	resolve, err := c.resolveEC2(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "fargate-ip-10-0-9-178.us-west-2.compute.internal" || c.ENIIP != "10.0.9.178" || c.HostIP != "198.51.100.21" {
		t.Fatalf("node %q ENI IP %q host IP %q", c.NodeName, c.ENIIP, c.HostIP)
	}
	if addr, err := resolve(context.Background()); err != nil || addr != "198.51.100.21:2222" {
		t.Fatalf("resolve = %q, %v", addr, err)
	}
	if auth := s.Requests("DescribeInstances")[0]; auth.Form.Get("InstanceId.1") != "i-0123456789abcdef0" {
		t.Fatalf("DescribeInstances %v", auth.Form)
	}
	// The node's placement labels come from the instance; a flag given wins.
	labels := c.providerConfig("v").Labels
	for k, want := range map[string]string{LabelInstanceType: "g5.xlarge", LabelTopologyZone: "us-west-2c", LabelTopologyRegion: "us-west-2", LabelHostProvider: "aws"} {
		if labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, labels[k], want)
		}
	}
	c, err = parseMain(t, "--region", "us-west-2", "--ec2-endpoint", s.URL, "--ssh", "root@i-0123456789abcdef0:2222",
		"--eni-tag", "satellite.dev/host=a100-1", "--host-instance-id", "i-0123456789abcdef0", "--instance-type", "gpu-box", "--zone", "rack-7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.resolveEC2(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := c.providerConfig("v").Labels; l[LabelInstanceType] != "gpu-box" || l[LabelTopologyZone] != "rack-7" || l[LabelTopologyRegion] != "us-west-2" {
		t.Errorf("flags given: labels %v", l)
	}

	c, err = parseMain(t, "--region", "us-west-2", "--ec2-endpoint", s.URL, "--eni-id", "eni-0000000000000dead")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.resolveEC2(context.Background())
	want := "--eni-id eni-0000000000000dead: ec2 DescribeNetworkInterfaces in us-west-2: The networkInterface ID 'eni-0000000000000dead' does not exist (InvalidNetworkInterfaceID.NotFound): check the ENI ID and the region"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}

	s.Deny("CreateNetworkInterface")
	c, err = parseMain(t, "--region", "us-west-2", "--ec2-endpoint", s.URL, "--ssh", "root@gpu-2.example.test", "--host-ip", "192.0.2.9",
		"--eni-subnet", "subnet-0123456789abcdef0", "--eni-security-groups", "sg-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.resolveEC2(context.Background())
	want = "--eni-tag satellite.dev/host=gpu-2.example.test --eni-subnet subnet-0123456789abcdef0 --eni-security-groups sg-0123456789abcdef0: ec2 CreateNetworkInterface in us-west-2: not authorized (UnauthorizedOperation): allow ec2:CreateNetworkInterface in the IAM policy of the role Satellite's service account uses (docs/eks.md, IAM)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

func TestENICommand(t *testing.T) {
	s := stubEnv(t)
	s.AddENI(ec2stub.ENI{ID: "eni-0b1b2c3d4e5f60718", VPC: "vpc-0aaaaaaaaaaaaaaa0", Subnet: "subnet-0123456789abcdef0", AZ: "us-west-2a",
		PrivateIP: "10.0.9.179", Tags: map[string]string{"satellite.dev/host": "a100-2", "satellite.dev/managed-by": "satellite", "satellite.dev/created": "2024-05-01T10:00:00.000000000Z"}})
	env := map[string]string{"SATELLITE_REGION": "us-west-2", "SATELLITE_EC2_ENDPOINT": s.URL}
	run := func(args ...string) (string, error) {
		cmd := newCommand(func(k string) string { return env[k] })
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("eni", "show", "--ssh", "root@a100-1")
	if err != nil {
		t.Fatal(err)
	}
	want := `eni-0a1b2c3d4e5f60718  10.0.9.178  vpc-0aaaaaaaaaaaaaaa0  subnet-0123456789abcdef0  us-west-2a  attached to i-0fffffffffffffff0, created by Satellite (satellite.dev/created=2024-05-01T10:00:00.000000000Z)
  node name: fargate-ip-10-0-9-178.us-west-2.compute.internal
  EKS's lookup (vpc-id=vpc-0aaaaaaaaaaaaaaa0 private-ip-address=10.0.9.178 attachment.status=attached): 1 ENI: the node is kept while it is NotReady (if vpc-0aaaaaaaaaaaaaaa0 is the cluster's VPC)
`
	if out != want {
		t.Fatalf("eni show:\n%s\nwant\n%s", out, want)
	}
	out, err = run("eni", "show", "--eni-tag", "satellite.dev/host=a100-2")
	if err != nil || !strings.Contains(out, "not attached, created by Satellite") ||
		!strings.Contains(out, "0 ENIs: the node is deleted, with its pods, whenever it is NotReady; attach the ENI to an instance in us-west-2a (docs/eks.md)") {
		t.Fatalf("eni show unattached: %v\n%s", err, out)
	}

	if _, err := run("eni", "delete", "--ssh", "root@a100-1"); err == nil || !strings.Contains(err.Error(), "is attached to i-0fffffffffffffff0: detach it first") {
		t.Fatalf("delete attached: %v", err)
	}
	out, err = run("eni", "delete", "--eni-tag", "satellite.dev/host=a100-2")
	if err != nil || out != "deleted eni-0b1b2c3d4e5f60718\n" {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	out, err = run("eni", "delete", "--eni-tag", "satellite.dev/host=a100-2")
	if err != nil || out != "no ENI created by Satellite carries the tags satellite.dev/host=a100-2 in us-west-2: nothing to delete\n" {
		t.Fatalf("delete again: %v\n%s", err, out)
	}
	if len(s.ENIs()) != 1 {
		t.Fatalf("ENIs left: %+v", s.ENIs())
	}
	for args, want := range map[string]string{
		"eni show --region=":                                    "--region is required",
		"eni show":                                              "--eni-id, --eni-tag or --ssh is required to find the ENI",
		"eni delete --eni-subnet subnet-1":                      "never does",
		"eni delete --eni-id eni-0a1b2c3d4e5f60718":             "an ENI given by --eni-id was not made by Satellite",
		"eni show --eni-id eni-0a1b2c3d4e5f60718 --eni-tag a=b": "--eni-id and --eni-tag exclude each other",
	} {
		if _, err := run(strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}
