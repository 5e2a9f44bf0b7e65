package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	sdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/singleflight"
)

// api is the part of the ECR API Satellite calls; *sdk.Client implements it.
type api interface {
	GetAuthorizationToken(context.Context, *sdk.GetAuthorizationTokenInput, ...func(*sdk.Options)) (*sdk.GetAuthorizationTokenOutput, error)
}

// Config says how to reach ECR.
type Config struct {
	// Endpoint, when set, replaces ECR's regional endpoint (the SDK's BaseEndpoint) in every
	// region: a VPC interface endpoint, or a stand-in in tests.
	Endpoint string
	// LoadOptions are added to config.LoadDefaultConfig's. Empty in real use: credentials
	// come from the SDK's default chain (IRSA, EKS Pod Identity, the environment).
	LoadOptions []func(*config.LoadOptions) error
}

// Credential is what containerd needs to pull from a registry.
type Credential struct {
	Username, Password string
	// Expires is when ECR stops accepting it.
	Expires time.Time
}

// Client gets and keeps authorization tokens, one per region (a token serves every registry
// the identity may read in its region). It is safe for concurrent use.
type Client struct {
	newAPI func(region string) api
	now    func() time.Time

	flight singleflight.Group
	mu     sync.Mutex
	cache  map[string]cached
}

type cached struct {
	cred    Credential
	refresh time.Time
}

// NewClient loads the AWS configuration and makes a client. It makes no call.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	opts := append([]func(*config.LoadOptions) error{config.WithAppID("satellite")}, cfg.LoadOptions...)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	return newClient(func(region string) api {
		return sdk.NewFromConfig(awsCfg, func(o *sdk.Options) {
			o.Region = region
			if cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		})
	}), nil
}

func newClient(newAPI func(string) api) *Client {
	return &Client{newAPI: newAPI, now: time.Now, cache: map[string]cached{}}
}

// callTimeout bounds one GetAuthorizationToken, the SDK's retries included.
const callTimeout = 30 * time.Second

// Credentials returns a credential for the registry, from the cache while it has 20 % of its
// lifetime left (as the kubelet renews service account tokens at 80 %), else from
// GetAuthorizationToken; concurrent callers for one region share one call.
func (c *Client) Credentials(ctx context.Context, r Registry) (Credential, error) {
	c.mu.Lock()
	e, ok := c.cache[r.Region]
	c.mu.Unlock()
	if ok && c.now().Before(e.refresh) {
		return e.cred, nil
	}
	v, err, _ := c.flight.Do(r.Region, func() (any, error) {
		// The call serves every caller waiting on it: one giving up does not end it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		cred, err := c.fetch(ctx, r)
		if err != nil {
			return Credential{}, err
		}
		now := c.now()
		c.mu.Lock()
		c.cache[r.Region] = cached{cred: cred, refresh: now.Add(cred.Expires.Sub(now) * 4 / 5)}
		c.mu.Unlock()
		return cred, nil
	})
	if err != nil {
		return Credential{}, err
	}
	return v.(Credential), nil
}

func (c *Client) fetch(ctx context.Context, r Registry) (Credential, error) {
	out, err := c.newAPI(r.Region).GetAuthorizationToken(ctx, &sdk.GetAuthorizationTokenInput{})
	if err != nil {
		return Credential{}, translate(r, err)
	}
	if len(out.AuthorizationData) == 0 {
		return Credential{}, fmt.Errorf("ecr GetAuthorizationToken in %s: no authorization data in the answer", r.Region)
	}
	d := out.AuthorizationData[0]
	cred, err := decodeToken(aws.ToString(d.AuthorizationToken))
	if err != nil {
		return Credential{}, fmt.Errorf("ecr GetAuthorizationToken in %s: %w", r.Region, err)
	}
	cred.Expires = aws.ToTime(d.ExpiresAt)
	if !cred.Expires.After(c.now()) {
		return Credential{}, fmt.Errorf("ecr GetAuthorizationToken in %s: the token expired at %s, before it arrived (is this machine's clock right?)", r.Region, cred.Expires.UTC().Format(time.RFC3339))
	}
	return cred, nil
}

// decodeToken reads an authorization token: base64 of "user:password" (the user is AWS).
func decodeToken(token string) (Credential, error) {
	b, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return Credential{}, errors.New("the authorization token is not base64")
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" || pass == "" {
		return Credential{}, errors.New("the authorization token is not user:password")
	}
	return Credential{Username: user, Password: pass}, nil
}

// ErrDenied: Satellite's AWS identity may not call GetAuthorizationToken, or has no valid
// credentials.
var ErrDenied = errors.New("not authorized")

// translate turns an error of GetAuthorizationToken into one that says what to fix.
func translate(r Registry, err error) error {
	where := "ecr GetAuthorizationToken in " + r.Region
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", where, err)
	}
	switch code := ae.ErrorCode(); code {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
		return fmt.Errorf("%s: not authorized (%s): allow ecr:GetAuthorizationToken, and ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repository, in the IAM policy of the role Satellite's service account uses (docs/eks.md, IAM): %w", where, code, ErrDenied)
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch":
		return fmt.Errorf("%s: AWS rejected Satellite's credentials (%s: %s): check the IRSA role annotation or the Pod Identity association of its service account: %w", where, code, ae.ErrorMessage(), ErrDenied)
	case "ThrottlingException", "Throttling", "TooManyRequestsException":
		return fmt.Errorf("%s: still %s after the SDK's retries: try again later", where, code)
	default:
		return fmt.Errorf("%s: %s (%s)", where, strings.TrimSuffix(ae.ErrorMessage(), "."), code)
	}
}
