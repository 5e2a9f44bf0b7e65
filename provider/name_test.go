package provider

import "testing"

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
