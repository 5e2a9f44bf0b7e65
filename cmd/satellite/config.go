package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/satellite-vk/satellite/cloud/ec2"
	"github.com/satellite-vk/satellite/internal/kubeletserver"
	"github.com/satellite-vk/satellite/provider"
	"github.com/satellite-vk/satellite/provider/gpu"
)

// config is everything the command line and environment say, parsed once.
type config struct {
	Kubeconfig string

	NodeName string
	ENIIP    string
	Region   string
	NodeIP   string
	Labels   map[string]string
	Taints   []corev1.Taint
	MaxPods  int64
	Reserved corev1.ResourceList // --system-reserved plus --kube-reserved

	// Where the host is and what it is, as node labels (placementLabels); filled from EC2
	// when the host is an instance and the flags leave them empty.
	InstanceType   string
	HostProvider   string
	TopologyRegion string
	Zone           string

	SSHTarget      string
	SSHUser        string
	SSHAddr        string
	SSHKey         string
	KnownHosts     string
	TrustOnFirst   bool
	PinnedSecret   string
	HostIP         string
	PodAPIEndpoint string
	// PodNetwork is "cluster" (pods at the node's address, their ports relayed) or "host".
	PodNetwork string
	// ClusterCIDRs (comma-separated) are routed from the host into the cluster besides its
	// Service ranges; ClusterDNS (comma-separated, default: kube-system/kube-dns's ClusterIP)
	// and ClusterDomain are the pods' DNS under ClusterFirst.
	ClusterCIDRs, ClusterDNS []string
	ClusterDomain            string
	// Tunnel routes the cluster's ranges from the host through Satellite (pod network cluster).
	Tunnel         bool
	Socket         string
	ContainerdRoot string
	LogRoot        string
	PodDir         string
	HelperDir      string
	DenyHostAccess bool
	GPUMode        string
	NvidiaSMI      string
	gpuMode        gpu.Mode

	GPURuntimeHandler string // "": containerd's default runtime

	Listen         string
	TLSCert        string
	TLSKey         string
	TLSSelfSigned  bool
	TLSMode        string // derived: kubeletserver.TLSModeFiles, TLSModeCSR or TLSModeSelfSigned
	CSRSigner      string
	CSRSelfApprove bool
	ClientCA       string
	HealthAddress  string

	LogLevel  string
	LogFormat string
	Workers   int

	DebugAddress string

	LogMaxSize  string
	LogMaxFiles int
	logMaxBytes int64

	ec2Config // the node's ENI and a host that is an EC2 instance (ec2.go)
	ecrConfig // image pull credentials from ECR (ecr.go)
}

// defaultLabels mark the node the way virtual-kubelet nodes and EKS Fargate nodes are marked:
// eks.amazonaws.com/compute-type=fargate keeps the aws-node and kube-proxy DaemonSets away.
var defaultLabels = map[string]string{
	"type":                           "virtual-kubelet",
	"kubernetes.io/role":             "agent",
	"eks.amazonaws.com/compute-type": "fargate",
}

const defaultTaint = "virtual-kubelet.io/provider=satellite:NoSchedule"

// complete validates the configuration and derives what can be derived. The checks run in a
// fixed order, and the first that fails is the error.
func (c *config) complete(v *flagValues) error {
	for _, check := range []func() error{
		func() error { return c.completeNode(v) },
		c.completeEC2,
		c.completeECR,
		c.completeNames,
		c.completeTLS,
		c.completeRequired,
		c.completeRuntime,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// flagValue is a flag's name and value, for checks that go over several flags in order.
type flagValue struct{ name, value string }

// completeNode parses the node's labels, taints, reserved resources and placement, and the
// --ssh target.
func (c *config) completeNode(v *flagValues) error {
	var err error
	if c.Labels, err = parseLabels(v.labels); err != nil {
		return err
	}
	if c.Taints, err = parseTaints(v.taints); err != nil {
		return err
	}
	if c.Reserved, err = parseReserved(v.systemReserved, v.kubeReserved); err != nil {
		return err
	}
	for _, f := range []flagValue{{"--instance-type", c.InstanceType}, {"--host-provider", c.HostProvider}, {"--topology-region", c.TopologyRegion}, {"--zone", c.Zone}} {
		if errs := validation.IsValidLabelValue(f.value); len(errs) > 0 {
			return fmt.Errorf("%s %q is not a valid label value: %s", f.name, f.value, errs[0])
		}
	}
	c.SSHUser, c.SSHAddr, err = parseSSHTarget(c.SSHTarget)
	return err
}

// completeNames checks --pod-api-endpoint and derives the node's name and the host's IP, unless
// they come from EC2 at start (resolveEC2).
func (c *config) completeNames() error {
	if c.PodAPIEndpoint != "" {
		host, port, err := net.SplitHostPort(c.PodAPIEndpoint)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--pod-api-endpoint %q: want host:port, like 10.0.0.10:443 or the cluster endpoint's host with :443", c.PodAPIEndpoint)
		}
	}
	if c.NodeName == "" && !c.eniLookup() {
		if c.ENIIP == "" || c.Region == "" {
			return errors.New("--node-name, or --eni-ip and --region to derive it (or --eni-id, --eni-tag or --eni-subnet), is required")
		}
		var err error
		if c.NodeName, err = ec2.FargateNodeName(c.ENIIP, c.Region); err != nil {
			return err
		}
	}
	if c.HostIP == "" && !c.instanceLookup() {
		host, _, _ := net.SplitHostPort(c.SSHAddr)
		if net.ParseIP(host) == nil {
			return fmt.Errorf("--host-ip is required when the --ssh host %q is not an IP address", host)
		}
		c.HostIP = host
	}
	return nil
}

// completeTLS derives how the kubelet API's serving certificate is had.
func (c *config) completeTLS() error {
	switch {
	case c.TLSCert != "" || c.TLSKey != "":
		if c.TLSCert == "" || c.TLSKey == "" {
			return errors.New("--tls-cert-file and --tls-private-key-file go together")
		}
		if c.TLSSelfSigned {
			return errors.New("--tls-self-signed and --tls-cert-file exclude each other")
		}
		c.TLSMode = kubeletserver.TLSModeFiles
	case c.TLSSelfSigned:
		c.TLSMode = kubeletserver.TLSModeSelfSigned
	default:
		if c.CSRSigner == "" {
			return errors.New("--csr-signer-name is required when the serving certificate is requested with a CSR")
		}
		c.TLSMode = kubeletserver.TLSModeCSR
	}
	return nil
}

// completeRequired checks the flags that have no default, in the order they are bound.
func (c *config) completeRequired() error {
	if c.TrustOnFirst && c.PinnedSecret == "" {
		return errNoPinSecret
	}
	for _, f := range []flagValue{{"--node-ip", c.NodeIP}, {"--ssh-key", c.SSHKey}, {"--known-hosts", c.KnownHosts}, {"--client-ca-file", c.ClientCA}} {
		if f.value == "" {
			return fmt.Errorf("%s is required", f.name)
		}
	}
	if net.ParseIP(c.NodeIP) == nil {
		return fmt.Errorf("--node-ip %q is not an IP address", c.NodeIP)
	}
	if c.PodNetwork != "cluster" && c.PodNetwork != "host" {
		return fmt.Errorf("--pod-network %q: want cluster or host", c.PodNetwork)
	}
	_, _, err := listenPort(c.Listen)
	return err
}

// completeRuntime checks the container log rotation and GPU flags.
func (c *config) completeRuntime() error {
	q, err := resource.ParseQuantity(c.LogMaxSize)
	if err != nil || q.Value() < 1024 {
		return fmt.Errorf("--container-log-max-size %q: want a size of at least 1Ki, like 10Mi", c.LogMaxSize)
	}
	c.logMaxBytes = q.Value()
	if c.gpuMode, err = gpu.ParseMode(c.GPUMode); err != nil {
		return fmt.Errorf("--gpu-mode: %w", err)
	}
	if c.gpuMode != gpu.ModeOff && c.NvidiaSMI == "" {
		return errors.New("--nvidia-smi is required unless --gpu-mode=off")
	}
	// A RuntimeClass's handler is a DNS label (node.k8s.io validation), so any handler the
	// kubelet could ask containerd for is one.
	if h := c.GPURuntimeHandler; h != "" && len(validation.IsDNS1123Label(h)) > 0 {
		return fmt.Errorf("--gpu-runtime-handler %q: %s", h, validation.IsDNS1123Label(h)[0])
	}
	if c.LogMaxFiles < 2 {
		return fmt.Errorf("--container-log-max-files %d: at least 2", c.LogMaxFiles)
	}
	return nil
}

// nodeLabels are the node's labels: the placement flags', then --node-labels (and the
// defaults), which win where both set one.
func (c *config) nodeLabels() map[string]string {
	labels := map[string]string{}
	for k, v := range map[string]string{LabelInstanceType: c.InstanceType, LabelHostProvider: c.HostProvider,
		LabelTopologyRegion: c.TopologyRegion, LabelTopologyZone: c.Zone} {
		if v != "" {
			labels[k] = v
		}
	}
	for k, v := range c.Labels {
		labels[k] = v
	}
	return labels
}

// providerConfig is the provider's share of the configuration.
func (c *config) providerConfig(version string) provider.Config {
	_, port, _ := listenPort(c.Listen)
	return provider.Config{
		NodeName:       c.NodeName,
		NodeIP:         c.NodeIP,
		KubeletPort:    port,
		HostIP:         c.HostIP,
		HostNetwork:    c.PodNetwork == "host",
		PodAPIEndpoint: c.PodAPIEndpoint,
		LogRoot:        c.LogRoot,
		PodDir:         c.PodDir,
		ContainerdRoot: c.ContainerdRoot,
		MaxPods:        c.MaxPods,
		Reserved:       c.Reserved,
		Labels:         c.nodeLabels(),
		Taints:         c.Taints,
		Version:        version,
		RelistPeriod:   time.Second,

		ContainerLogMaxSize:  c.logMaxBytes,
		ContainerLogMaxFiles: c.LogMaxFiles,
		GPUMode:              c.gpuMode,
		NvidiaSMI:            c.NvidiaSMI,
		GPURuntimeHandler:    c.GPURuntimeHandler,
		SubPathHelper:        subPathHelper(c.HelperDir),
		DenyHostAccess:       c.DenyHostAccess,
	}
}
