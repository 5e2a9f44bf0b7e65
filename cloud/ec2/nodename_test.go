package ec2

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestFargateNodeName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip, region, want string
		wantErr          bool
	}{
		{ip: "10.0.9.178", region: "us-west-2", want: "fargate-ip-10-0-9-178.us-west-2.compute.internal"},
		{ip: "10.0.9.178", region: "us-east-1", want: "fargate-ip-10-0-9-178.ec2.internal"},
		{ip: "192.168.1.2", region: "eu-central-1", want: "fargate-ip-192-168-1-2.eu-central-1.compute.internal"},
		{ip: "172.31.0.1", region: "us-gov-west-1", want: "fargate-ip-172-31-0-1.us-gov-west-1.compute.internal"},
		{ip: "10.0.9", region: "us-west-2", wantErr: true},
		{ip: "fe80::1", region: "us-west-2", wantErr: true},
		{ip: "::ffff:10.0.0.1", region: "us-west-2", wantErr: true},
		{ip: "", region: "us-west-2", wantErr: true},
		{ip: "10.0.0.1", region: "", wantErr: true},
		{ip: "10.0.0.1", region: "US-WEST-2", wantErr: true},
		{ip: "10.0.0.1", region: "us-west", wantErr: true},
		{ip: "10.0.0.1", region: "us--2", wantErr: true},
		{ip: "10.0.0.1", region: "us-west-2.evil", wantErr: true},
	}
	for _, tt := range tests {
		got, err := FargateNodeName(tt.ip, tt.region)
		if (err != nil) != tt.wantErr {
			t.Errorf("FargateNodeName(%q, %q) error = %v, wantErr %v", tt.ip, tt.region, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("FargateNodeName(%q, %q) = %q, want %q", tt.ip, tt.region, got, tt.want)
		}
	}
}

// awsRegion is a plain reading of an AWS region name: lower-case words joined by dashes,
// at least two, then a number.
var awsRegion = regexp.MustCompile(`^[a-z]+(-[a-z]+)+-[0-9]+$`)

// FuzzFargateNodeName: the node name is made of an IPv4 address and a region shaped like
// AWS's (awsRegion, and a DNS label), and nothing else: a valid node name (a DNS name) from
// which the address reads back.
func FuzzFargateNodeName(f *testing.F) {
	f.Add("10.0.9.178", "us-west-2")
	f.Add("10.0.9.178", "us-east-1")
	f.Add("172.31.0.1", "us-gov-west-1")
	f.Add("::ffff:10.0.0.1", "us-west-2")
	f.Add("10.0.0.1", "us-west-2.evil")
	f.Fuzz(func(t *testing.T, ip, region string) {
		name, err := FargateNodeName(ip, region)
		addr, perr := netip.ParseAddr(ip)
		wantOK := perr == nil && addr.Is4() && awsRegion.MatchString(region) && len(region) <= 63
		if (err == nil) != wantOK {
			t.Fatalf("FargateNodeName(%q, %q) = %q, %v; want ok=%v", ip, region, name, err, wantOK)
		}
		if err != nil {
			return
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Fatalf("node name %q: %v", name, errs)
		}
		for _, label := range strings.Split(name, ".") {
			if errs := validation.IsDNS1123Label(label); len(errs) > 0 {
				t.Fatalf("node name %q, label %q: %v", name, label, errs)
			}
		}
		dashed, _, _ := strings.Cut(strings.TrimPrefix(name, "fargate-ip-"), ".")
		if back, err := netip.ParseAddr(strings.ReplaceAll(dashed, "-", ".")); err != nil || back != addr {
			t.Fatalf("node name %q does not give back %s: %v, %v", name, addr, back, err)
		}
	})
}
