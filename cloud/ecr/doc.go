// Package ecr is Satellite's use of the Amazon ECR API, through aws-sdk-go-v2: the registry
// credentials the host's containerd needs to pull an image from a private ECR repository.
//
// A kubelet on EKS gets them from the ecr-credential-provider plugin, which calls
// ecr:GetAuthorizationToken with the node's IAM role. Satellite's host has no such role and no
// plugin: Satellite calls GetAuthorizationToken itself, with its own AWS identity (IRSA or
// EKS Pod Identity on its service account), and hands the credentials to containerd in the
// CRI PullImage request, as the kubelet hands what the plugin gave it. A token is valid for
// 12 hours; Credentials keeps it per registry until shortly before it expires, so a burst of
// pods asking for the same registry costs one call.
//
// As in package ec2, errors from AWS are translated at this boundary into messages that say
// what to fix (the IAM permission, the credentials).
package ecr
