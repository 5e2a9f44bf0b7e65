package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
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

type flagValues struct {
	labels, taints               []string
	systemReserved, kubeReserved []string
}

// Labels of the node's placement, as cloud providers set them on their nodes.
const (
	LabelInstanceType   = "node.kubernetes.io/instance-type"
	LabelTopologyRegion = "topology.kubernetes.io/region"
	LabelTopologyZone   = "topology.kubernetes.io/zone"
	LabelHostProvider   = "satellite.dev/host-provider"
)

func bindFlags(fs *pflag.FlagSet, c *config, v *flagValues) {
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file; empty: the in-cluster service account")
	fs.StringVar(&c.NodeName, "node-name", "", "node name; empty: derived from --eni-ip and --region as EKS names Fargate nodes (fargate-ip-10-0-9-178.us-west-2.compute.internal)")
	fs.StringVar(&c.ENIIP, "eni-ip", "", "private IPv4 address of the node's ENI in the cluster's VPC, from which the node name is derived")
	fs.StringVar(&c.Region, "region", "", "AWS region of the cluster: the node name's DNS suffix, and where the node's ENI is looked up")
	fs.StringVar(&c.NodeIP, "node-ip", "", "the node's InternalIP: the address the control plane reaches Satellite's kubelet API on (in the cluster, Satellite's pod IP)")
	fs.StringSliceVar(&v.labels, "node-labels", nil, "extra node labels, key=value, comma-separated (added to type=virtual-kubelet, kubernetes.io/role=agent, eks.amazonaws.com/compute-type=fargate)")
	fs.StringSliceVar(&v.taints, "node-taints", []string{defaultTaint}, "node taints, key=value:Effect, comma-separated")
	fs.Int64Var(&c.MaxPods, "max-pods", 110, "pod capacity of the node")
	fs.StringSliceVar(&v.systemReserved, "system-reserved", nil, "what the host keeps for its own daemons (sshd, containerd, the NVIDIA persistence daemon), as the kubelet's --system-reserved: cpu=500m,memory=1Gi,ephemeral-storage=10Gi; the node's allocatable is its capacity minus this and --kube-reserved")
	fs.StringSliceVar(&v.kubeReserved, "kube-reserved", nil, "what is kept for Kubernetes' own use of the host (the containerd shims and pod log writers), as the kubelet's --kube-reserved, same form as --system-reserved")
	fs.StringVar(&c.InstanceType, "instance-type", "", "the host's machine type, as node label "+LabelInstanceType+" (gpu_1x_a10 on Lambda); empty with --host-instance-id or --host-instance-tag: the EC2 instance's type")
	fs.StringVar(&c.HostProvider, "host-provider", "", "who rents the host out, as node label "+LabelHostProvider+" (lambda); empty with --host-instance-id or --host-instance-tag: aws")
	fs.StringVar(&c.TopologyRegion, "topology-region", "", "the host's region, as node label "+LabelTopologyRegion+" (us-east-1 on Lambda); empty with --host-instance-id or --host-instance-tag: the instance's region")
	fs.StringVar(&c.Zone, "zone", "", "the host's zone, as node label "+LabelTopologyZone+"; empty with --host-instance-id or --host-instance-tag: the instance's Availability Zone")
	fs.StringVar(&c.SSHTarget, "ssh", "", "the remote host, user@host:port (port 22 if omitted)")
	fs.StringVar(&c.SSHKey, "ssh-key", "", "private key file for the SSH login (mount it from a Secret)")
	fs.StringVar(&c.KnownHosts, "known-hosts", "", "OpenSSH known_hosts file holding the host's key; the host key is always verified")
	fs.BoolVar(&c.TrustOnFirst, "ssh-trust-on-first-use", false, "trust a host that is in no known_hosts line on first connection, and pin its key in --ssh-pinned-key-secret (a changed key is still refused)")
	fs.StringVar(&c.PinnedSecret, "ssh-pinned-key-secret", "", "namespace/name of the Secret holding the host key pinned on first use")
	fs.StringVar(&c.HostIP, "host-ip", "", "the host's address as reported in pod status (hostIP, podIP); empty: the --ssh host when it is an IP address")
	fs.StringVar(&c.PodAPIEndpoint, "pod-api-endpoint", "", "host:port of the Kubernetes API as pods on the host reach it (on EKS, the cluster's endpoint, host only, with :443): KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, and the kubernetes Service's other link variables, name it instead of the Service's ClusterIP, which the host cannot route to; empty: the ClusterIP, as a kubelet gives")
	fs.StringVar(&c.Socket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's CRI socket on the host")
	fs.StringVar(&c.ContainerdRoot, "containerd-root", "/var/lib/containerd", "containerd's root directory on the host (its filesystem is the node's ephemeral storage)")
	fs.StringVar(&c.LogRoot, "pod-log-dir", "/var/log/pods", "directory on the host for pod logs")
	fs.StringVar(&c.PodDir, "pod-dir", "/var/lib/satellite/pods", "directory on the host for pods' volumes (a 0700 directory per pod, secrets on tmpfs, removed with the pod)")
	fs.BoolVar(&c.DenyHostAccess, "deny-host-access", false, "refuse, at admission, pods with a privileged container, a hostPath volume, hostPID or hostIPC, each of which reaches the remote host (for clusters without Pod Security admission; the pod fails with reason HostAccessDenied)")
	fs.StringVar(&c.HelperDir, "subpath-helper-dir", "", "directory holding satellite-subpath-linux-<arch>, the helpers Satellite copies to the host to mount volumeMounts' subPaths safely (make build puts them beside the binary, the image at /); empty: the directory of the satellite binary")
	fs.StringVar(&c.GPUMode, "gpu-mode", string(gpu.ModeAuto), "how the host's NVIDIA GPUs are advertised (nvidia.com/gpu) and given to containers: cdi (CDI devices nvidia.com/gpu=<index>, from the spec `nvidia-ctk cdi generate` writes), env (NVIDIA_VISIBLE_DEVICES=<uuids>, read by nvidia-container-runtime under --gpu-runtime-handler), auto (cdi when the host's containerd has CDI on and a CDI spec for nvidia.com/gpu, else env) or off")
	fs.StringVar(&c.GPURuntimeHandler, "gpu-runtime-handler", "nvidia", "with --gpu-mode env: the containerd runtime (CRI runtime handler) for the sandboxes of pods asking for nvidia.com/gpu, the one `nvidia-ctk runtime configure --runtime=containerd` adds; empty: containerd's default runtime. A pod's runtimeClassName takes precedence")
	fs.StringVar(&c.NvidiaSMI, "nvidia-smi", "nvidia-smi", "nvidia-smi on the host, by name in its PATH or by path; a host without it has no GPUs")
	fs.StringVar(&c.Listen, "listen-address", "0.0.0.0:10250", "address:port of the kubelet API")
	fs.StringVar(&c.TLSCert, "tls-cert-file", "", "serving certificate of the kubelet API (PEM); empty: requested with a CertificateSigningRequest (see --csr-signer-name)")
	fs.StringVar(&c.TLSKey, "tls-private-key-file", "", "private key of the serving certificate (PEM)")
	fs.BoolVar(&c.TLSSelfSigned, "tls-self-signed", false, "serve the kubelet API with a self-signed certificate generated at start, instead of a CSR-issued one (the apiserver can then not verify it)")
	fs.StringVar(&c.CSRSigner, "csr-signer-name", "kubernetes.io/kubelet-serving", "signer of the serving certificate's CSR (on EKS: beta.eks.amazonaws.com/app-serving)")
	fs.BoolVar(&c.CSRSelfApprove, "csr-self-approve", false, "approve Satellite's own serving-certificate CSR (only that one: same identity, the node's name and address); needs RBAC approve on the signer")
	fs.StringVar(&c.ClientCA, "client-ca-file", "", "CA bundle that verifies client certificates on the kubelet API (the apiserver's kubelet client CA); bearer tokens are checked with TokenReview either way")
	fs.StringVar(&c.LogMaxSize, "container-log-max-size", "10Mi", "size at which a container's log file on the host is rotated (the kubelet's containerLogMaxSize)")
	fs.IntVar(&c.LogMaxFiles, "container-log-max-files", 5, "log files kept per container, the current one included (the kubelet's containerLogMaxFiles)")
	fs.StringVar(&c.HealthAddress, "health-address", "", "address:port serving /healthz, /readyz and Prometheus /metrics (no secrets, unauthenticated); empty: off")
	fs.StringVar(&c.DebugAddress, "debug-address", "", "address:port for Go's pprof and Satellite's open connection counts (/debug/satellite); empty: off. Bind it to 127.0.0.1: it is not authenticated")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text (key=value) or json")
	fs.IntVar(&c.Workers, "pod-sync-workers", 10, "virtual-kubelet pod controller workers")
	bindEC2Flags(fs, &c.ec2Config)
	bindECRFlags(fs, &c.ecrConfig)
}

// envName is the environment variable that sets a flag: SATELLITE_ and the flag's name.
func envName(flag string) string {
	return "SATELLITE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its environment variable.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	return errors.Join(errs...)
}

// complete validates the configuration and derives what can be derived.
func (c *config) complete(v *flagValues) error {
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
	for flag, val := range map[string]string{"--instance-type": c.InstanceType, "--host-provider": c.HostProvider, "--topology-region": c.TopologyRegion, "--zone": c.Zone} {
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			return fmt.Errorf("%s %q is not a valid label value: %s", flag, val, errs[0])
		}
	}
	if c.SSHUser, c.SSHAddr, err = parseSSHTarget(c.SSHTarget); err != nil {
		return err
	}
	if err := c.completeEC2(); err != nil {
		return err
	}
	if err := c.completeECR(); err != nil {
		return err
	}
	if c.PodAPIEndpoint != "" {
		host, port, err := net.SplitHostPort(c.PodAPIEndpoint)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--pod-api-endpoint %q: want host:port, like 10.0.0.10:443 or the cluster endpoint's host with :443", c.PodAPIEndpoint)
		}
	}
	if c.NodeName == "" && !c.eniLookup() { // else resolveEC2 names it at start
		if c.ENIIP == "" || c.Region == "" {
			return errors.New("--node-name, or --eni-ip and --region to derive it (or --eni-id, --eni-tag or --eni-subnet), is required")
		}
		if c.NodeName, err = ec2.FargateNodeName(c.ENIIP, c.Region); err != nil {
			return err
		}
	}
	if c.HostIP == "" && !c.instanceLookup() { // else resolveEC2 sets it at start
		host, _, _ := net.SplitHostPort(c.SSHAddr)
		if net.ParseIP(host) == nil {
			return fmt.Errorf("--host-ip is required when the --ssh host %q is not an IP address", host)
		}
		c.HostIP = host
	}
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
	if c.TrustOnFirst && c.PinnedSecret == "" {
		return errNoPinSecret
	}
	for name, val := range map[string]string{"--ssh-key": c.SSHKey, "--known-hosts": c.KnownHosts, "--node-ip": c.NodeIP, "--client-ca-file": c.ClientCA} {
		if val == "" {
			return fmt.Errorf("%s is required", name)
		}
	}
	if net.ParseIP(c.NodeIP) == nil {
		return fmt.Errorf("--node-ip %q is not an IP address", c.NodeIP)
	}
	if _, _, err := listenPort(c.Listen); err != nil {
		return err
	}
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

func listenPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("--listen-address %q: %w", addr, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("--listen-address %q: bad port", addr)
	}
	return host, int32(n), nil
}

// parseSSHTarget splits user@host[:port].
func parseSSHTarget(t string) (user, addr string, err error) {
	user, hostport, ok := strings.Cut(t, "@")
	if !ok || user == "" || hostport == "" {
		return "", "", fmt.Errorf("--ssh %q: want user@host[:port]", t)
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), "22")
	}
	host, _, _ := net.SplitHostPort(hostport)
	if host == "" {
		return "", "", fmt.Errorf("--ssh %q: no host", t)
	}
	return user, hostport, nil
}

func parseLabels(extra []string) (map[string]string, error) {
	labels := map[string]string{}
	for k, v := range defaultLabels {
		labels[k] = v
	}
	for _, kv := range extra {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--node-labels: %q is not key=value", kv)
		}
		labels[k] = v
	}
	return labels, nil
}

func parseTaints(specs []string) ([]corev1.Taint, error) {
	var taints []corev1.Taint
	for _, s := range specs {
		kv, effect, ok := strings.Cut(s, ":")
		k, v, _ := strings.Cut(kv, "=")
		e := corev1.TaintEffect(effect)
		if !ok || k == "" || (e != corev1.TaintEffectNoSchedule && e != corev1.TaintEffectPreferNoSchedule && e != corev1.TaintEffectNoExecute) {
			return nil, fmt.Errorf("--node-taints: %q is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute", s)
		}
		taints = append(taints, corev1.Taint{Key: k, Value: v, Effect: e})
	}
	return taints, nil
}

// reservable are the resources --system-reserved and --kube-reserved take.
var reservable = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

// parseReserved adds up --system-reserved and --kube-reserved.
func parseReserved(system, kube []string) (corev1.ResourceList, error) {
	sum := corev1.ResourceList{}
	for flag, kvs := range map[string][]string{"--system-reserved": system, "--kube-reserved": kube} {
		for _, kv := range kvs {
			k, v, ok := strings.Cut(kv, "=")
			name := corev1.ResourceName(strings.TrimSpace(k))
			if !ok || !slices.Contains(reservable, name) {
				return nil, fmt.Errorf("%s: %q: want cpu=, memory= or ephemeral-storage=<quantity>", flag, kv)
			}
			q, err := resource.ParseQuantity(strings.TrimSpace(v))
			if err != nil || q.Sign() < 0 {
				return nil, fmt.Errorf("%s: %q: %s is not a quantity like 500m or 1Gi", flag, kv, v)
			}
			total := sum[name]
			total.Add(q)
			sum[name] = total
		}
	}
	if len(sum) == 0 {
		return nil, nil
	}
	return sum, nil
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
