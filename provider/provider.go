package provider

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"golang.org/x/crypto/ssh"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/images"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/logs"
	"github.com/satellite-vk/satellite/provider/network"
	"github.com/satellite-vk/satellite/provider/nodestatus"
	"github.com/satellite-vk/satellite/provider/podworker"
	"github.com/satellite-vk/satellite/provider/stats"
	"github.com/satellite-vk/satellite/provider/volumes"
	"github.com/satellite-vk/satellite/remote"
)

// Host is what the provider needs of the remote host besides its runtime: its parts go to
// the consumers that need them (the sub-packages declare their own, smaller, interfaces).
type Host interface {
	Commands
	Files
	Streams
	// Ping checks the SSH link.
	Ping(ctx context.Context) error
}

// Commands runs shell commands on the host.
type Commands interface {
	// Output runs a shell command on the host and returns its standard output.
	Output(ctx context.Context, cmd string) ([]byte, error)
	// Input runs a shell command with the given standard input (for data that must not be
	// in a command line).
	Input(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error)
}

// Files are the host's files.
type Files interface {
	// Open opens a file on the host for reading.
	Open(ctx context.Context, path string) (remote.File, error)
	// Stat describes a file on the host.
	Stat(ctx context.Context, path string) (os.FileInfo, error)
	// Rename renames a file on the host, replacing the target.
	Rename(ctx context.Context, from, to string) error
	// Remove removes a file on the host.
	Remove(ctx context.Context, path string) error
	// WriteFile writes a file on the host with the given mode.
	WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error
	// MkdirAll creates a directory on the host, with its parents.
	MkdirAll(ctx context.Context, path string, mode os.FileMode) error
	// RemoveAll removes a path on the host and everything below it.
	RemoveAll(ctx context.Context, path string) error
	// Glob lists the host's files matching a pattern.
	Glob(ctx context.Context, pattern string) ([]string, error)
}

// Streams are connections through the host: exec and attach sessions, TCP.
type Streams interface {
	// Stream serves an exec or attach session at a CRI streaming URL.
	Stream(ctx context.Context, url string, opts remote.StreamOptions) error
	// PredialStream starts connecting to the streaming server of the last session, for the
	// next Stream (nil when there was no session yet).
	PredialStream(ctx context.Context) *remote.Predialed
	// DialTCP connects to an address as seen from the host.
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
	// OpenChannel opens an SSH channel of the given type on the connection (the cluster
	// network's tun@openssh.com).
	OpenChannel(ctx context.Context, name string, payload []byte) (ssh.Channel, <-chan *ssh.Request, error)
}

// Runtime is the host's CRI v1 API.
type Runtime = podworker.Runtime

// Config configures the provider.
type Config struct {
	NodeName string
	// NodeIP is the node's InternalIP: the address Satellite's kubelet API listens on.
	NodeIP string
	// KubeletPort is the port of Satellite's kubelet API.
	KubeletPort int32
	// HostIP is the remote host's address: where the pods' ports are reached on the host.
	HostIP string
	// HostNetwork keeps the pods off the cluster's network: their podIP and hostIP are
	// HostIP, and nothing is relayed. Otherwise (the default) their IP is NodeIP, where
	// Satellite relays the ports they declare and the ports Services target on them (package
	// network).
	HostNetwork bool
	// Cluster is the cluster's network as the host's pods reach it through Satellite's
	// tunnel; without ranges (or with HostNetwork) they do not.
	Cluster ClusterNetwork
	// PodAPIEndpoint, host:port, is the Kubernetes API as pods on the host reach it: the
	// kubernetes Service's link variables (KUBERNETES_SERVICE_HOST, _PORT...) name it instead
	// of the Service's ClusterIP, which the host cannot route to. Empty: the ClusterIP, as
	// the kubelet does.
	PodAPIEndpoint string
	// LogRoot is the directory on the host under which pod logs are written.
	LogRoot string
	// PodDir is the directory on the host under which pods' volumes live (one 0700
	// directory per pod, removed with it).
	PodDir string
	// PullRecords is the file on the host that records which credentials pulled each image
	// (images/pullrecords.go). Default: image-pulls.json beside PodDir.
	PullRecords string
	// Tokens issues service account tokens for projected volumes (the TokenRequest API).
	Tokens TokenRequester
	// ContainerdRoot is containerd's root directory on the host (its disk is the node's
	// ephemeral storage).
	ContainerdRoot string
	// MaxPods is the node's pod capacity.
	MaxPods int64
	// Reserved is what the host keeps for itself and Satellite's own use (the kubelet's
	// --system-reserved plus --kube-reserved): allocatable is capacity minus it.
	Reserved corev1.ResourceList
	// Labels and Taints are set on the node object.
	Labels map[string]string
	Taints []corev1.Taint
	// Version is Satellite's version, reported as the kubelet version.
	Version string
	// RelistPeriod is how often the host is listed in full. Default 1 s.
	RelistPeriod time.Duration
	// NodeStatusPeriod is how often the node's conditions are checked. Default 10 s.
	NodeStatusPeriod time.Duration
	// PodsSynced reports whether the pod lister is complete, which orphan collection waits for.
	PodsSynced func() bool
	// ContainerLogMaxSize is the size at which a container's log file is rotated, and
	// ContainerLogMaxFiles how many files (the current one included) are kept: the kubelet's
	// containerLogMaxSize and containerLogMaxFiles. Defaults 10 MiB and 5.
	ContainerLogMaxSize  int64
	ContainerLogMaxFiles int
	// GPUMode says how the host's NVIDIA GPUs are advertised and given to containers; empty
	// is gpu.ModeOff. NvidiaSMI is the nvidia-smi the host runs to list them (a name in its
	// PATH or a path); a host without it has no GPUs.
	GPUMode   gpu.Mode
	NvidiaSMI string
	// GPURuntimeHandler is the CRI runtime handler of the sandboxes of pods that ask for GPUs
	// while they are given by NVIDIA_VISIBLE_DEVICES (env mode): containerd's runtime running
	// nvidia-container-runtime; "" is containerd's default runtime (package gpu).
	GPURuntimeHandler string
	// RuntimeClasses looks up the RuntimeClass a pod's runtimeClassName names; without it
	// such a pod's sandbox cannot be created.
	RuntimeClasses gpu.RuntimeClassGetter
	// Registries gives credentials for images of registries that have a credential provider
	// (ECR), tried after those of the pod's image pull secrets; nil: none.
	Registries images.CredentialProvider
	// DenyHostAccess refuses, at admission, pods with a privileged container, a hostPath
	// volume, hostPID or hostIPC: for clusters without Pod Security admission.
	DenyHostAccess bool
	// SubPathHelper gives the satellite-subpath helper for the host's architecture, which
	// subPath mounts need (package volumes); nil: containers with a subPath cannot be created.
	SubPathHelper HelperSource
}

// ClusterNetwork is what the host's pods are given of the cluster's network.
type ClusterNetwork struct {
	// Ranges are routed from the host into the cluster: its Service and pod ranges.
	Ranges []netip.Prefix
	// SSHAddr is the host's SSH address, which no range may hold (zero: a name).
	SSHAddr netip.Addr
	// DNS and Domain are the cluster's DNS under ClusterFirst, while the tunnel is up.
	DNS    []string
	Domain string
}

// HelperSource returns the satellite-subpath helper built for linux and a GOARCH.
type HelperSource = volumes.HelperSource

// Provider runs the pods bound to one Satellite node on one remote host.
type Provider struct {
	cfg     Config
	streams Streams
	cri     Runtime
	objects Objects

	// pods runs one worker per pod, which syncs it with the host.
	pods  *podworker.Worker
	logs  *logs.Manager
	stats *stats.Collector

	mu        sync.Mutex
	notifyPod func(*corev1.Pod)
	node      *nodestatus.Manager
	// gpu is the node's device manager: its GPUs, their allocation and runtime handlers.
	gpu *gpu.Manager
	// relays carry the cluster's connections to the pods' ports; nil with HostNetwork.
	relays *network.Relays
	// link carries the pods' connections to the cluster; nil without cluster ranges.
	link *network.Link
}

// Deps are what the provider works through: the host, its runtime and the Kubernetes API.
type Deps struct {
	Host     Host
	Runtime  Runtime
	Recorder record.EventRecorder
	// Pods lists the pods bound to the node, as the API has them (virtual-kubelet's
	// informer); nil: Kubernetes' copy is not consulted and no orphan is collected.
	Pods corev1listers.PodLister
	// Objects reads the ConfigMaps, Secrets and Services the pods use; nil: none can be read.
	Objects Objects
}

// Objects is what the provider reads of the Kubernetes API besides pods. A missing object is
// a NotFound error (apierrors.IsNotFound). Returned objects are shared: not to be changed.
type Objects = podworker.Objects

// New makes a provider; Run starts it.
func New(cfg Config, deps Deps) *Provider {
	host, cri, recorder := deps.Host, deps.Runtime, deps.Recorder
	if cfg.RelistPeriod == 0 {
		cfg.RelistPeriod = time.Second
	}
	if cfg.PodDir == "" {
		cfg.PodDir = "/var/lib/satellite/pods"
	}
	if cfg.PullRecords == "" {
		cfg.PullRecords = path.Join(path.Dir(cfg.PodDir), "image-pulls.json")
	}
	if cfg.NodeStatusPeriod == 0 {
		cfg.NodeStatusPeriod = 10 * time.Second
	}
	if cfg.LogRoot == "" {
		cfg.LogRoot = "/var/log/pods"
	}
	if cfg.PodsSynced == nil {
		cfg.PodsSynced = func() bool { return true }
	}
	p := &Provider{cfg: cfg, streams: host, cri: cri, objects: deps.Objects}
	podIP, reserved, ports := cfg.HostIP, []network.Port(nil), podworker.Deps{}.Ports
	if !cfg.HostNetwork {
		var udp network.UDPDialer // UDP reaches the host through the tunnel alone
		if len(cfg.Cluster.Ranges) > 0 {
			p.link = network.NewLink(network.LinkConfig{Ranges: cfg.Cluster.Ranges, SSHAddr: cfg.Cluster.SSHAddr,
				Changed: p.clusterNetworkChanged(recorder), Repaired: p.clusterNetworkRepaired(recorder)}, host)
			udp = p.link.DialUDP
		}
		p.relays = network.New(network.Config{ListenIP: cfg.NodeIP, HostIP: cfg.HostIP, UDP: udp}, host)
		podIP, ports = cfg.NodeIP, p.relays
		reserved = []network.Port{{Protocol: corev1.ProtocolTCP, Port: cfg.KubeletPort}}
	}
	p.logs = logs.New(logs.Config{
		Selector: map[string]string{kuberuntime.LabelNode: cfg.NodeName},
		LogFile:  func(c *runtimeapi.Container) string { return containerLogFile(cfg.LogRoot, c) },
		MaxSize:  cfg.ContainerLogMaxSize,
		MaxFiles: cfg.ContainerLogMaxFiles,
	}, host, cri)
	allocatable := func() corev1.ResourceList { return p.node.Allocatable() }
	p.gpu = gpu.New(gpu.Config{Mode: cfg.GPUMode, NvidiaSMI: cfg.NvidiaSMI, RuntimeHandler: cfg.GPURuntimeHandler,
		RuntimeClasses: cfg.RuntimeClasses, NodeContainers: map[string]string{kuberuntime.LabelNode: cfg.NodeName}}, cri, host)
	p.pods = podworker.New(podworker.Config{NodeName: cfg.NodeName, HostIP: cfg.HostIP, PodIP: podIP, ReservedPorts: reserved,
		PodAPIEndpoint: cfg.PodAPIEndpoint,
		LogRoot:        cfg.LogRoot, PodDir: cfg.PodDir, RelistPeriod: cfg.RelistPeriod, PodsSynced: cfg.PodsSynced, DenyHostAccess: cfg.DenyHostAccess},
		podworker.Deps{Host: host, Runtime: cri, Recorder: recorder, Pods: deps.Pods, Objects: deps.Objects, GPU: p.gpu, Logs: p.logs,
			Images: images.New(images.Config{Runtime: cri, Host: host, Records: cfg.PullRecords,
				Secrets: objectSecrets{&p.objects}, Registries: cfg.Registries, Recorder: recorder}),
			Volumes: volumes.New(volumes.Config{Host: host, PodDir: cfg.PodDir, Objects: deps.Objects, Tokens: cfg.Tokens,
				Recorder: recorder, Allocatable: allocatable, SubPathHelper: cfg.SubPathHelper}),
			Allocatable: allocatable, Publish: p.publish, Ports: ports, ClusterDNS: p.clusterDNS})
	p.node = nodestatus.New(nodestatus.Config{NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, KubeletPort: cfg.KubeletPort,
		ContainerdRoot: cfg.ContainerdRoot, MaxPods: cfg.MaxPods, Reserved: cfg.Reserved, Labels: cfg.Labels, Taints: cfg.Taints,
		Version: cfg.Version, Period: cfg.NodeStatusPeriod}, nodestatus.Deps{Host: host, Runtime: cri, GPUs: p.gpu, Recorder: recorder,
		Conditions: p.networkConditions})
	p.stats = stats.New(stats.Config{NodeName: cfg.NodeName, ContainerdRoot: cfg.ContainerdRoot, HostDown: p.hostDown}, host, cri)
	return p
}

// Run serves pods until ctx ends; it returns after every goroutine it started has stopped.
// Containers on the host are left running: stopping Satellite stops nothing there, except
// the containers of pods whose deletion is under way, which are removed first.
func (p *Provider) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	run := []func(context.Context){p.pods.Run, p.node.Run, p.logs.Run}
	if p.relays != nil {
		run = append(run, p.relays.Run)
	}
	if p.link != nil {
		run = append(run, p.link.Run)
	}
	for _, f := range run {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// NotifyPods registers the callback through which pod status reaches virtual-kubelet.
func (p *Provider) NotifyPods(_ context.Context, f func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notifyPod = f
}

func (p *Provider) publish(pod *corev1.Pod) {
	p.mu.Lock()
	f := p.notifyPod
	p.mu.Unlock()
	if f != nil && pod != nil {
		f(pod)
	}
}

// CreatePod records the pod and wakes its worker; the work happens there.
func (p *Provider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	p.pods.Put(pod)
	return nil
}

// UpdatePod records the new spec (only images, labels and annotations can change).
func (p *Provider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	p.pods.Put(pod)
	return nil
}

// DeletePod asks the pod's worker to stop it with the pod's grace period and remove it from
// the host. It may be called many times; the shortest grace period asked for wins.
//
// A pod Satellite has not taken in yet (deleted while Satellite was starting, before
// virtual-kubelet handed it over) is taken in to be deleted: its containers may be running on
// the host, and answering "not found" would have virtual-kubelet remove it from the API while
// they run on until orphan collection.
func (p *Provider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	p.pods.Delete(pod)
	return nil
}

// PodStopped is closed once the pod, being deleted, has no container running on the host (at
// once for a pod not on the node): virtual-kubelet's deletion of the pod's API object waits
// for it (vkadapter.NodeClient).
func (p *Provider) PodStopped(uid types.UID) <-chan struct{} { return p.pods.Stopped(uid) }

// GetPod returns the pod as last published.
func (p *Provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	if pod := p.pods.Get(namespace, name); pod != nil {
		return pod, nil
	}
	return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, name)
}

// GetPodStatus returns the pod's last published status.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every pod on the node.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	return p.pods.List(), nil
}

// TokenRequester is the TokenRequest API of service accounts.
type TokenRequester interface {
	CreateToken(ctx context.Context, namespace, serviceAccount string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// objectSecrets reads Secrets through the provider's Objects, for the packages that take a
// SecretGetter; without Objects no Secret can be read.
type objectSecrets struct{ objects *Objects }

func (s objectSecrets) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	if *s.objects == nil {
		return nil, fmt.Errorf("couldn't get secret %v/%v, no kubeClient defined", ns, name)
	}
	return (*s.objects).Secret(ctx, ns, name)
}
