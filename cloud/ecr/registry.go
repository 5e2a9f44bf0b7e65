package ecr

import (
	"regexp"
	"strings"
)

// Registry is a private ECR registry, as an image reference's host names it.
type Registry struct {
	Host    string // 111122223333.dkr.ecr.us-west-2.amazonaws.com
	Account string // the registry ID: the AWS account that owns it
	Region  string
}

// hostPattern is the host of a private ECR registry: an account, dkr.ecr (dkr-ecr for the
// dual-stack endpoints), -fips where asked, the region, and the partition's domain. It
// follows the pattern the kubelet's ecr-credential-provider matches
// (kubernetes/cloud-provider-aws, cmd/ecr-credential-provider).
var hostPattern = regexp.MustCompile(`^(\d{12})\.dkr[.-]ecr(?:-fips)?\.([a-z0-9][a-z0-9-]*)\.(?:amazonaws\.com(?:\.cn)?|on\.aws|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// ParseImage reports the ECR registry an image reference pulls from, if it is one. The
// reference's host is what comes before its first slash, when that contains a dot or a colon
// (as containerd and the kubelet read references); a port is not part of an ECR host.
func ParseImage(image string) (Registry, bool) {
	host, _, ok := strings.Cut(image, "/")
	if !ok {
		return Registry{}, false
	}
	m := hostPattern.FindStringSubmatch(strings.ToLower(host))
	if m == nil {
		return Registry{}, false
	}
	return Registry{Host: m[0], Account: m[1], Region: m[2]}, true
}
