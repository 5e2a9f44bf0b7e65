package ec2

import (
	"fmt"
	"net/netip"
	"strings"
)

// FargateNodeName is the name EKS gives a Fargate node for a private IPv4 address in a region:
// fargate-ip-10-0-9-178.us-west-2.compute.internal. us-east-1 uses ec2.internal, as EC2's
// private DNS names do there.
func FargateNodeName(ip, region string) (string, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() {
		return "", fmt.Errorf("node name: %q is not an IPv4 address", ip)
	}
	suffix, err := ComputeDomain(region)
	if err != nil {
		return "", err
	}
	return "fargate-ip-" + strings.ReplaceAll(addr.String(), ".", "-") + "." + suffix, nil
}

// ComputeDomain is the private DNS suffix EC2 uses in a region.
func ComputeDomain(region string) (string, error) {
	if !validRegion(region) {
		return "", fmt.Errorf("node name: %q is not an AWS region (like us-west-2)", region)
	}
	if region == "us-east-1" {
		return "ec2.internal", nil
	}
	return region + ".compute.internal", nil
}

// validRegion accepts names shaped like AWS regions: lower-case words joined by dashes,
// ending in a number (us-west-2, ap-southeast-1, us-gov-west-1, eu-isoe-west-1), no longer
// than the DNS label (RFC 1035, 63 characters) they are in the compute domain.
func validRegion(r string) bool {
	parts := strings.Split(r, "-")
	if len(parts) < 3 || len(r) > 63 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for _, c := range p {
			digit := c >= '0' && c <= '9'
			lower := c >= 'a' && c <= 'z'
			if i == len(parts)-1 && !digit || i < len(parts)-1 && !lower {
				return false
			}
		}
	}
	return true
}
