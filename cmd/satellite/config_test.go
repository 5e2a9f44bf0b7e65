package main

import (
	"strings"
	"testing"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestParseSSHTarget(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, user, addr string }{
		{"ubuntu@192.0.2.10", "ubuntu", "192.0.2.10:22"},
		{"ubuntu@192.0.2.10:2222", "ubuntu", "192.0.2.10:2222"},
		{"root@gpu-1.example.test", "root", "gpu-1.example.test:22"},
		{"root@[2001:db8::1]:22", "root", "[2001:db8::1]:22"},
		{"root@2001:db8::1", "root", "[2001:db8::1]:22"},
	}
	for _, tt := range tests {
		user, addr, err := parseSSHTarget(tt.in)
		if err != nil || user != tt.user || addr != tt.addr {
			t.Errorf("parseSSHTarget(%q) = %q, %q, %v; want %q, %q", tt.in, user, addr, err, tt.user, tt.addr)
		}
	}
	for _, bad := range []string{"", "192.0.2.10", "@host", "user@", "user@:22"} {
		if _, _, err := parseSSHTarget(bad); err == nil {
			t.Errorf("parseSSHTarget(%q) succeeded", bad)
		}
	}
}

func TestParseTaints(t *testing.T) {
	t.Parallel()
	got, err := parseTaints([]string{"virtual-kubelet.io/provider=satellite:NoSchedule", "gpu:NoExecute"})
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Taint{{Key: "virtual-kubelet.io/provider", Value: "satellite", Effect: corev1.TaintEffectNoSchedule}, {Key: "gpu", Effect: corev1.TaintEffectNoExecute}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseTaints = %+v", got)
	}
	for _, bad := range []string{"novalue", "k=v:Sometimes", ":NoSchedule"} {
		if _, err := parseTaints([]string{bad}); err == nil {
			t.Errorf("parseTaints(%q) succeeded", bad)
		}
	}
}

func TestLabelsAndEnv(t *testing.T) {
	t.Parallel()
	var c config
	var v flagValues
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	bindFlags(fs, &c, &v)
	if err := fs.Parse([]string{"--region", "us-east-1", "--node-labels", "gpu=a10,kubernetes.io/role=gpu"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SATELLITE_REGION": "eu-west-1", // the command line wins
		"SATELLITE_ENI_IP": "10.0.9.178", "SATELLITE_SSH": "ubuntu@192.0.2.10", "SATELLITE_SSH_KEY": "/k",
		"SATELLITE_KNOWN_HOSTS": "/kh", "SATELLITE_NODE_IP": "10.1.2.3", "SATELLITE_TLS_CERT_FILE": "/c",
		"SATELLITE_TLS_PRIVATE_KEY_FILE": "/k2", "SATELLITE_CLIENT_CA_FILE": "/ca",
	}
	if err := applyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.complete(&v); err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "fargate-ip-10-0-9-178.ec2.internal" {
		t.Errorf("node name %q", c.NodeName)
	}
	if c.HostIP != "192.0.2.10" || c.SSHAddr != "192.0.2.10:22" || c.SSHUser != "ubuntu" {
		t.Errorf("ssh %q %q host ip %q", c.SSHUser, c.SSHAddr, c.HostIP)
	}
	want := map[string]string{"type": "virtual-kubelet", "eks.amazonaws.com/compute-type": "fargate", "kubernetes.io/role": "gpu", "gpu": "a10"}
	for k, val := range want {
		if c.Labels[k] != val {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], val)
		}
	}
	if len(c.Taints) != 1 || c.Taints[0].Key != "virtual-kubelet.io/provider" {
		t.Errorf("default taint missing: %+v", c.Taints)
	}
	if len(c.Reserved) != 0 {
		t.Errorf("reserved %v by default, want nothing (as the kubelet)", c.Reserved)
	}
	if pc := c.providerConfig("v"); pc.GPUMode != gpu.ModeAuto || pc.NvidiaSMI != "nvidia-smi" || pc.GPURuntimeHandler != "nvidia" {
		t.Errorf("GPU defaults: mode %q, nvidia-smi %q, runtime handler %q; want auto, nvidia-smi, nvidia", pc.GPUMode, pc.NvidiaSMI, pc.GPURuntimeHandler)
	}
}

// --system-reserved and --kube-reserved add up, as the kubelet subtracts both; the placement
// flags become the labels cloud providers set, and --node-labels wins over them.
func TestReservedAndPlacement(t *testing.T) {
	t.Parallel()
	var c config
	var v flagValues
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	bindFlags(fs, &c, &v)
	if err := fs.Parse([]string{"--node-name", "n", "--ssh", "u@192.0.2.1", "--ssh-key", "k", "--known-hosts", "kh", "--node-ip", "10.0.0.1",
		"--tls-self-signed", "--client-ca-file", "ca",
		"--system-reserved", "cpu=500m,memory=1Gi", "--kube-reserved", "cpu=250m, memory=512Mi,ephemeral-storage=10Gi",
		"--instance-type", "gpu_1x_a10", "--host-provider", "lambda", "--topology-region", "us-east-1",
		"--node-labels", "topology.kubernetes.io/region=us-east-3"}); err != nil {
		t.Fatal(err)
	}
	if err := c.complete(&v); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: "750m", corev1.ResourceMemory: "1536Mi", corev1.ResourceEphemeralStorage: "10Gi"} {
		if q := c.Reserved[name]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("reserved %s = %s, want %s", name, q.String(), want)
		}
	}
	l := c.providerConfig("v").Labels
	for k, want := range map[string]string{LabelInstanceType: "gpu_1x_a10", LabelHostProvider: "lambda", LabelTopologyRegion: "us-east-3", "type": "virtual-kubelet"} {
		if l[k] != want {
			t.Errorf("label %s = %q, want %q", k, l[k], want)
		}
	}
	if _, ok := l[LabelTopologyZone]; ok {
		t.Errorf("zone label set without --zone: %v", l)
	}
}

func TestCompleteErrors(t *testing.T) {
	t.Parallel()
	base := []string{"--node-name", "n", "--ssh", "u@192.0.2.1", "--ssh-key", "k", "--known-hosts", "kh", "--node-ip", "10.0.0.1",
		"--tls-cert-file", "c", "--tls-private-key-file", "k", "--client-ca-file", "ca"}
	tests := []struct {
		drop, add []string
		want      string
	}{
		{drop: []string{"--known-hosts"}, want: "--known-hosts is required"},
		{drop: []string{"--node-name"}, want: "--eni-ip and --region"},
		{add: []string{"--node-ip", "nope"}, want: "not an IP"},
		{add: []string{"--ssh", "u@gpu.example.test"}, want: "--host-ip is required"},
		{add: []string{"--listen-address", "0.0.0.0"}, want: "--listen-address"},
		{add: []string{"--node-name", "", "--eni-ip", "10.0.0.1", "--region", "mars"}, want: "not an AWS region"},
		{add: []string{"--gpu-mode", "mig"}, want: `--gpu-mode: GPU mode "mig": want auto, cdi, env or off`},
		{add: []string{"--gpu-runtime-handler", "Nvidia Runtime"}, want: `--gpu-runtime-handler "Nvidia Runtime": a lowercase RFC 1123 label`},
		{add: []string{"--nvidia-smi", ""}, want: "--nvidia-smi is required unless --gpu-mode=off"},
		{add: []string{"--system-reserved", "gpu=1"}, want: `--system-reserved: "gpu=1": want cpu=, memory= or ephemeral-storage=<quantity>`},
		{add: []string{"--kube-reserved", "memory=lots"}, want: `--kube-reserved: "memory=lots": lots is not a quantity like 500m or 1Gi`},
		{add: []string{"--system-reserved", "cpu=-1"}, want: `--system-reserved: "cpu=-1"`},
		{add: []string{"--instance-type", "gpu 1x a10"}, want: `--instance-type "gpu 1x a10" is not a valid label value`},
		{add: []string{"--pod-api-endpoint", "https://api.example"}, want: `--pod-api-endpoint "https://api.example": want host:port`},
		{add: []string{"--pod-api-endpoint", "api.example:0"}, want: `--pod-api-endpoint "api.example:0": want host:port`},
		{add: []string{"--ecr-endpoint", "ecr.example"}, want: `--ecr-endpoint "ecr.example": want an http(s) URL`},
		{add: []string{"--ecr-credentials=false", "--ecr-endpoint", "http://127.0.0.1:1"}, want: "--ecr-endpoint is set but --ecr-credentials=false"},
	}
	for _, tt := range tests {
		args := dropFlag(base, tt.drop)
		args = append(args, tt.add...)
		var c config
		var v flagValues
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		bindFlags(fs, &c, &v)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		err := c.complete(&v)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("args %v: error %v, want one containing %q", args, err, tt.want)
		}
	}
}

func dropFlag(args, drop []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if len(drop) > 0 && args[i] == drop[0] {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func TestNewLogger(t *testing.T) {
	for _, f := range []string{"text", "json"} {
		if _, err := newLogger("debug", f); err != nil {
			t.Errorf("format %s: %v", f, err)
		}
	}
	if _, err := newLogger("info", "xml"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := newLogger("verbose", "text"); err == nil {
		t.Error("level verbose accepted")
	}
}

// Of several bad flags, the error names the same one every time: the checks go in flag order,
// not in a map's.
func TestCompleteErrorOrder(t *testing.T) {
	t.Parallel()
	base := []string{"--node-name", "n", "--ssh", "u@192.0.2.1", "--ssh-key", "k", "--known-hosts", "kh", "--node-ip", "10.0.0.1",
		"--tls-cert-file", "c", "--tls-private-key-file", "k", "--client-ca-file", "ca"}
	for _, tt := range []struct {
		add  []string
		want string
	}{
		{[]string{"--zone", "rack 7", "--instance-type", "gpu 1x a10", "--host-provider", "lambda labs"}, `--instance-type "gpu 1x a10" is not a valid label value`},
		{[]string{"--client-ca-file", "", "--known-hosts", "", "--ssh-key", ""}, "--ssh-key is required"},
		{[]string{"--kube-reserved", "gpu=1", "--system-reserved", "gpu=2"}, `--system-reserved: "gpu=2"`},
	} {
		for range 20 {
			var c config
			var v flagValues
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			bindFlags(fs, &c, &v)
			if err := fs.Parse(append(append([]string{}, base...), tt.add...)); err != nil {
				t.Fatal(err)
			}
			if err := c.complete(&v); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("%v: error %v, want %q", tt.add, err, tt.want)
			}
		}
	}
}
