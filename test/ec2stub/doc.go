// Package ec2stub is a stand-in for the part of the EC2 query API Satellite calls
// (DescribeNetworkInterfaces, CreateNetworkInterface, DeleteNetworkInterface, CreateTags,
// DescribeInstances), served over HTTP by an httptest server, so that tests drive the real SDK
// client (aws-sdk-go-v2's service/ec2 with its endpoint set to the stand-in's URL and static
// credentials) through its serializers, retries and error parsing.
//
// It parses the SDK's form posts (Action=...&Version=2016-11-15&Filter.1.Name=...) and answers
// with EC2's XML (namespace http://ec2.amazonaws.com/doc/2016-11-15/) and EC2's error documents
// (<Response><Errors><Error><Code>...), including the codes and HTTP statuses EC2 uses:
// RequestLimitExceeded with 503 (which the SDK retries), UnauthorizedOperation with 403, and
// the .NotFound codes with 400. Its state (subnets, security groups, ENIs, instances) is held
// in memory and is strongly consistent, unlike EC2's; tests that need EC2's eventual consistency
// inject it with faults.
//
// Unit tests use it through New; end-to-end tests can start it the same way and pass its URL
// to satellite --ec2-endpoint with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set to anything.
package ec2stub
