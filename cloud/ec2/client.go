package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// api is the part of the EC2 API Satellite calls; *sdk.Client implements it.
type api interface {
	DescribeNetworkInterfaces(context.Context, *sdk.DescribeNetworkInterfacesInput, ...func(*sdk.Options)) (*sdk.DescribeNetworkInterfacesOutput, error)
	CreateNetworkInterface(context.Context, *sdk.CreateNetworkInterfaceInput, ...func(*sdk.Options)) (*sdk.CreateNetworkInterfaceOutput, error)
	DeleteNetworkInterface(context.Context, *sdk.DeleteNetworkInterfaceInput, ...func(*sdk.Options)) (*sdk.DeleteNetworkInterfaceOutput, error)
	DescribeInstances(context.Context, *sdk.DescribeInstancesInput, ...func(*sdk.Options)) (*sdk.DescribeInstancesOutput, error)
}

// Config says how to reach EC2.
type Config struct {
	// Region is the AWS region of the calls.
	Region string
	// Endpoint, when set, replaces EC2's regional endpoint (the SDK's BaseEndpoint): a VPC
	// interface endpoint, or a stand-in in tests.
	Endpoint string
	// LoadOptions are added to config.LoadDefaultConfig's, after the region. Empty in real use:
	// credentials then come from the SDK's default chain (environment, IRSA's web identity
	// token, EKS Pod Identity, the instance profile). Tests give static credentials here.
	LoadOptions []func(*config.LoadOptions) error
}

// Client makes Satellite's EC2 calls in one region. It is safe for concurrent use.
type Client struct {
	api    api
	region string
	// settle is how long a fresh ENI is given to show in DescribeNetworkInterfaces (EC2's
	// listing is eventually consistent) before Satellite looks for a concurrent twin.
	settle time.Duration
}

// NewClient loads the AWS configuration and makes a client. It makes no call.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Region == "" {
		return nil, errors.New("ec2: no region")
	}
	opts := append([]func(*config.LoadOptions) error{config.WithRegion(cfg.Region), config.WithAppID("satellite")}, cfg.LoadOptions...)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	c := sdk.NewFromConfig(awsCfg, func(o *sdk.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Client{api: methods(c), region: cfg.Region, settle: 3 * time.Second}, nil
}

// sdkMethods holds the SDK client's four methods as method values. The *sdk.Client itself is
// never converted to an interface: the linker then keeps only these four of its 700-odd API
// methods, where it keeps every exported method of a type held in an interface whenever
// anything in the binary calls methods by reflection (text/template and go-cmp do). That is
// 19 MB of machine code, over a third of Satellite's, and its pages in Satellite's RSS.
type sdkMethods struct {
	describeNIs  func(context.Context, *sdk.DescribeNetworkInterfacesInput, ...func(*sdk.Options)) (*sdk.DescribeNetworkInterfacesOutput, error)
	createNI     func(context.Context, *sdk.CreateNetworkInterfaceInput, ...func(*sdk.Options)) (*sdk.CreateNetworkInterfaceOutput, error)
	deleteNI     func(context.Context, *sdk.DeleteNetworkInterfaceInput, ...func(*sdk.Options)) (*sdk.DeleteNetworkInterfaceOutput, error)
	describeInst func(context.Context, *sdk.DescribeInstancesInput, ...func(*sdk.Options)) (*sdk.DescribeInstancesOutput, error)
}

func methods(c *sdk.Client) sdkMethods {
	return sdkMethods{c.DescribeNetworkInterfaces, c.CreateNetworkInterface, c.DeleteNetworkInterface, c.DescribeInstances}
}

func (m sdkMethods) DescribeNetworkInterfaces(ctx context.Context, in *sdk.DescribeNetworkInterfacesInput, o ...func(*sdk.Options)) (*sdk.DescribeNetworkInterfacesOutput, error) {
	return m.describeNIs(ctx, in, o...)
}

func (m sdkMethods) CreateNetworkInterface(ctx context.Context, in *sdk.CreateNetworkInterfaceInput, o ...func(*sdk.Options)) (*sdk.CreateNetworkInterfaceOutput, error) {
	return m.createNI(ctx, in, o...)
}

func (m sdkMethods) DeleteNetworkInterface(ctx context.Context, in *sdk.DeleteNetworkInterfaceInput, o ...func(*sdk.Options)) (*sdk.DeleteNetworkInterfaceOutput, error) {
	return m.deleteNI(ctx, in, o...)
}

func (m sdkMethods) DescribeInstances(ctx context.Context, in *sdk.DescribeInstancesInput, o ...func(*sdk.Options)) (*sdk.DescribeInstancesOutput, error) {
	return m.describeInst(ctx, in, o...)
}

// Region is the client's region.
func (c *Client) Region() string { return c.region }

var (
	// ErrNotFound: the ENI, instance, subnet or security group does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDenied: Satellite's AWS identity may not make the call, or has no valid credentials.
	ErrDenied = errors.New("not authorized")
	// ErrThrottled: EC2 kept answering RequestLimitExceeded after the SDK's retries.
	ErrThrottled = errors.New("throttled by EC2")
)

// hints say what to check for EC2's error codes, beyond EC2's own message.
var hints = map[string]string{
	"InvalidNetworkInterfaceID.NotFound":  "check the ENI ID and the region",
	"InvalidNetworkInterfaceID.Malformed": "an ENI ID looks like eni-0a1b2c3d4e5f60718",
	"InvalidInstanceID.NotFound":          "check the instance ID and the instance's region",
	"InvalidInstanceID.Malformed":         "an instance ID looks like i-0123456789abcdef0",
	"InvalidSubnetID.NotFound":            "check the subnet ID and the region",
	"InvalidSecurityGroupID.NotFound":     "check the security group IDs: they must be in the subnet's VPC",
	"InvalidGroup.NotFound":               "check the security group IDs: they must be in the subnet's VPC",
	"InvalidParameter":                    "check that the security groups are in the subnet's VPC",
	"InsufficientFreeAddressesInSubnet":   "choose a subnet with free addresses",
	"InvalidNetworkInterface.InUse":       "it is attached to an instance: detach it first (aws ec2 detach-network-interface)",
}

// Error is a failed EC2 call, said the way a user can act on. It wraps ErrNotFound,
// ErrDenied or ErrThrottled when it is of that kind.
type Error struct {
	Action string // the EC2 action, like CreateNetworkInterface
	Code   string // EC2's error code, like InvalidSubnetID.NotFound; "" when EC2 did not answer
	text   string
	kind   error
}

func (e *Error) Error() string { return e.text }
func (e *Error) Unwrap() error { return e.kind }

// translate turns an error of an EC2 call into an *Error that says what to fix.
func (c *Client) translate(action string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return &Error{Action: action, text: fmt.Sprintf("ec2 %s in %s: %v", action, c.region, err), kind: err}
	}
	e := &Error{Action: action, Code: ae.ErrorCode()}
	where := fmt.Sprintf("ec2 %s in %s", action, c.region)
	switch code, msg := e.Code, strings.TrimSuffix(ae.ErrorMessage(), "."); {
	case code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException":
		e.kind = ErrDenied
		e.text = fmt.Sprintf("%s: not authorized (%s): allow ec2:%s in the IAM policy of the role Satellite's service account uses (docs/eks.md, IAM)", where, code, action)
	case code == "AuthFailure" || code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken":
		e.kind = ErrDenied
		e.text = fmt.Sprintf("%s: AWS rejected Satellite's credentials (%s: %s): check the IRSA role annotation or the Pod Identity association of its service account", where, code, msg)
	case code == "RequestLimitExceeded" || code == "Throttling":
		e.kind = ErrThrottled
		e.text = fmt.Sprintf("%s: still %s after the SDK's retries: other clients in the account are using up its EC2 request rate; try again later", where, code)
	default:
		e.text = fmt.Sprintf("%s: %s (%s)", where, msg, code)
		if h, ok := hints[code]; ok {
			e.text += ": " + h
		}
		if strings.HasSuffix(code, ".NotFound") {
			e.kind = ErrNotFound
		}
	}
	return e
}
