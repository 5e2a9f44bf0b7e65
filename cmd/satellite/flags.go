package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/satellite-vk/satellite/provider/gpu"
)

// flagValues are the flags parsed in complete, as given.
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
	fs.StringVar(&c.HostIP, "host-ip", "", "the host's address, where the pods' ports are reached on the host (and their podIP with --pod-network=host); empty: the --ssh host when it is an IP address")
	fs.BoolVar(&c.Tunnel, "tunnel", true, "with --pod-network=cluster, give the host's pods the cluster's network: its Service ranges, --cluster-cidrs and its DNS, through a layer-3 tunnel on the SSH connection (the host's sshd must permit it: PermitTunnel point-to-point)")
	fs.StringSliceVar(&c.ClusterCIDRs, "cluster-cidrs", nil, "comma-separated CIDRs the host's pods reach through Satellite besides the cluster's Service ranges (which are read from its ServiceCIDRs): its pod ranges, on EKS the VPC's CIDRs")
	fs.StringSliceVar(&c.ClusterDNS, "cluster-dns", nil, "comma-separated DNS server addresses of pods with dnsPolicy ClusterFirst (the kubelet's clusterDNS); empty: the ClusterIP of the kube-system/kube-dns Service, if there is one")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain (the kubelet's clusterDomain)")
	fs.StringVar(&c.PodNetwork, "pod-network", "cluster", "cluster: pods are at the node's address (--node-ip, Satellite's pod IP), which relays their declared ports and the ports Services target to the host over SSH; host: pods are at the host's address (--host-ip) and the cluster reaches them only if it can route there")
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
