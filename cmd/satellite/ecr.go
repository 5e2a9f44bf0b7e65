package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/spf13/pflag"

	"github.com/satellite-vk/satellite/cloud/ecr"
	"github.com/satellite-vk/satellite/provider/images"
)

// ecrConfig is what the command line says of image pull credentials from ECR.
type ecrConfig struct {
	ECRCredentials bool
	ECREndpoint    string
}

func bindECRFlags(fs *pflag.FlagSet, c *ecrConfig) {
	fs.BoolVar(&c.ECRCredentials, "ecr-credentials", true, "pull images of private ECR registries (<account>.dkr.ecr.<region>.amazonaws.com) with credentials from ecr:GetAuthorizationToken, called with Satellite's own AWS identity, as the kubelet's ecr-credential-provider does; tried after the pod's image pull secrets")
	fs.StringVar(&c.ECREndpoint, "ecr-endpoint", "", "ECR API endpoint URL instead of each region's (a VPC interface endpoint, or a stand-in in tests)")
}

func (c *ecrConfig) completeECR() error {
	if c.ECREndpoint == "" {
		return nil
	}
	if u, err := url.Parse(c.ECREndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--ecr-endpoint %q: want an http(s) URL", c.ECREndpoint)
	}
	if !c.ECRCredentials {
		return fmt.Errorf("--ecr-endpoint is set but --ecr-credentials=false")
	}
	return nil
}

// registryCredentials is the provider's credential provider for ECR registries, or nil.
func (c *ecrConfig) registryCredentials(ctx context.Context) (images.CredentialProvider, error) {
	if !c.ECRCredentials {
		return nil, nil
	}
	client, err := ecr.NewClient(ctx, ecr.Config{Endpoint: c.ECREndpoint})
	if err != nil {
		return nil, err
	}
	return ecrCredentials{client}, nil
}

// ecrCredentials serves the repositories of private ECR registries.
type ecrCredentials struct{ c *ecr.Client }

func (e ecrCredentials) Credentials(ctx context.Context, repository string) ([]images.Credential, error) {
	r, ok := ecr.ParseImage(repository)
	if !ok {
		return nil, nil
	}
	cred, err := e.c.Credentials(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("no credentials for %s: %w", r.Host, err)
	}
	return []images.Credential{{Username: cred.Username, Password: cred.Password}}, nil
}
