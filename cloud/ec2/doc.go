// Package ec2 is Satellite's use of the EC2 API, through aws-sdk-go-v2: the ENI whose private
// address names a node (found by ID or tags, or created and tagged so that a restart finds it
// again), the name EKS gives a Fargate node for that address (FargateNodeName), and the
// current address of a host that is an EC2 instance.
//
// It sits beside provider and remote rather than under either: both are cloud-neutral, and
// neither calls it. cmd/satellite calls it once at start to name the node, and hands
// remote.Config.Resolve an AddressResolver, so remote dials an instance's current address
// without knowing of EC2. Later cloud calls (ECR credentials for the provider's image pulls)
// belong under cloud/ as well, each behind an interface declared where it is used.
//
// Why the ENI matters: EKS runs the AWS cloud provider's Fargate variant for nodes named
// fargate-...; while such a node is NotReady, it keeps the node only if
// DescribeNetworkInterfaces, filtered by the cluster's VPC ID, the address in the name
// (private-ip-address) and attachment.status=attached, finds exactly one ENI
// (kubernetes/cloud-provider-aws, pkg/providers/v1/variant/fargate). See docs/eks.md.
//
// Errors from EC2 are translated at this package's boundary into messages that say what to fix
// (the IAM permission, the ID, the region), wrapping ErrNotFound, ErrDenied or ErrThrottled
// where callers act on the kind.
package ec2
