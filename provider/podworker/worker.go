package podworker

import (
	"context"
	"net"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/provider/network"
	"github.com/satellite-vk/satellite/provider/prober"
	"github.com/satellite-vk/satellite/provider/status"
	"github.com/satellite-vk/satellite/remote"
)

// Host is what the pod workers need of the remote host.
type Host interface {
	// Output runs a shell command (the marks of orphaned pod directories).
	Output(ctx context.Context, cmd string) ([]byte, error)
	// Open, MkdirAll, RemoveAll and Glob are the host's files: resolv.conf, the pods' log
	// directories, the pod directories.
	Open(ctx context.Context, path string) (remote.File, error)
	MkdirAll(ctx context.Context, path string, mode os.FileMode) error
	RemoveAll(ctx context.Context, path string) error
	Glob(ctx context.Context, pattern string) ([]string, error)
	// DialTCP connects from the host, for HTTP lifecycle hooks and probes.
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
}

// Runtime is the host's CRI v1 API.
type Runtime interface {
	runtimeapi.RuntimeServiceClient
	runtimeapi.ImageServiceClient
}

// Objects is what the pod workers read of the Kubernetes API besides pods (container
// environments). A missing object is a NotFound error; returned objects are not to be changed.
type Objects interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// Services lists the Services of every namespace.
	Services(ctx context.Context) ([]*corev1.Service, error)
}

// imageManager is what the pod workers ask of the image manager (images.Manager).
type imageManager interface {
	Ensure(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandboxConfig, waiting string) (time.Duration, error)
	Forget(uid types.UID)
}

// volumeManager is what the pod workers ask of the volume manager (volumes.Manager).
type volumeManager interface {
	Due(uid types.UID) bool
	SetUp(ctx context.Context, pod *corev1.Pod) error
	Ready(uid types.UID) bool
	ResyncIn(pod *corev1.Pod) time.Duration
	Mounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vars map[string]string) ([]*runtimeapi.Mount, error)
	FileMounts(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]*runtimeapi.Mount, error)
	Remove(ctx context.Context, pod *corev1.Pod) error
	// RemoveDir removes an orphaned pod directory.
	RemoveDir(ctx context.Context, dir string) error
	Forget(uid types.UID)
}

// deviceManager is what the pod workers ask of the device manager (gpu.Manager).
type deviceManager interface {
	RuntimeHandler(ctx context.Context, pod *corev1.Pod) (gpu.Handler, error)
	SandboxError(ctx context.Context, h gpu.Handler, err error) error
	Assign(ctx context.Context, c *corev1.Container, cfg *runtimeapi.ContainerConfig) (release func(), err error)
}

// terminations completes exited containers' statuses with their termination messages
// (logs.Manager).
type terminations interface {
	AddTerminationMessage(ctx context.Context, st *runtimeapi.ContainerStatus) bool
}

// probes is what the pod workers ask of the prober (prober.Manager).
type probes interface {
	Run(ctx context.Context)
	Sync(ctx context.Context, pod *corev1.Pod, containers map[string][]*runtimeapi.ContainerStatus)
	Health(pod *corev1.Pod, containers map[string][]*runtimeapi.ContainerStatus) map[string]status.Health
	KillReason(uid types.UID, id string) string
	Forget(uid types.UID)
}

// Config configures the pod workers; the provider has set its defaults.
type Config struct {
	NodeName string
	// HostIP is the remote host's address: where the pods' ports are reached on the host
	// (probes, lifecycle hooks, the relays).
	HostIP string
	// PodIP is the pods' podIP and hostIP as their status and the downward API report them:
	// the node's InternalIP when the pods are on the cluster's network (package network),
	// "" for HostIP.
	PodIP string
	// ReservedPorts are Satellite's own listeners on PodIP, which no pod may declare.
	ReservedPorts []network.Port
	// PodAPIEndpoint, host:port, is the Kubernetes API as pods on the host reach it ("": the
	// kubernetes Service's ClusterIP).
	PodAPIEndpoint string
	// LogRoot is the directory on the host under which pod logs are written.
	LogRoot string
	// PodDir is the directory on the host under which pods' volumes live.
	PodDir string
	// RelistPeriod is how often the host is listed in full.
	RelistPeriod time.Duration
	// PodsSynced reports whether the pod lister is complete, which orphan collection waits for.
	PodsSynced func() bool
	// DenyHostAccess refuses, at admission, pods with host access.
	DenyHostAccess bool
}

// Deps are what the pod workers work through: the host, its runtime, the Kubernetes API and
// the managers each pod is handed to.
type Deps struct {
	// The managers: images, volumes, devices, and the logs' termination messages.
	Images  imageManager
	Volumes volumeManager
	GPU     deviceManager
	Logs    terminations
	// Allocatable is the node's allocatable resources, for resource fields of the downward API.
	Allocatable func() corev1.ResourceList
	// Publish hands a pod's new status to virtual-kubelet.
	Publish  func(*corev1.Pod)
	Host     Host
	Runtime  Runtime
	Recorder record.EventRecorder
	// Pods lists the pods bound to the node, as the API has them; nil: none is consulted and
	// no orphan is collected. Objects reads ConfigMaps, Secrets and Services; nil: none can be read.
	Pods    corev1listers.PodLister
	Objects Objects
	// ClusterDNS is the cluster's DNS as pods on the host reach it at the moment (none while
	// they cannot: ClusterFirst then falls back to the host's resolv.conf, as on a kubelet
	// without clusterDNS); nil: none.
	ClusterDNS func() kuberuntime.ClusterDNS
	// Ports relays the cluster's connections to the ports pods declare (network.Relays);
	// nil: none is relayed.
	Ports portRelays
}

// portRelays is what the pod workers ask of the cluster network (network.Relays): listeners
// on the node's address for the ports each pod declares, by owner.
type portRelays interface {
	Set(ctx context.Context, owner string, ports []network.Port) error
	Remove(ctx context.Context, owner string)
}

// Worker runs one worker per pod (the kubelet's pod workers): each syncs its pod with the
// host when woken, and the relist and the runtime's events wake them.
type Worker struct {
	cfg      Config
	host     Host
	cri      Runtime
	recorder record.EventRecorder
	lister   corev1listers.PodLister
	objects  Objects

	store     *store
	workers   *workers
	crashLoop crashLoop
	probes    probes
	logs      terminations
	images    imageManager
	volumes   volumeManager
	gpu       deviceManager
	// dns forms new sandboxes' DNS from the host's resolv.conf (podconfig.go).
	dns         *sandboxDNS
	allocatable func() corev1.ResourceList
	publish     func(*corev1.Pod)
	ports       portRelays
}

// finishDeletionsWithin bounds the deletions Satellite finishes once told to stop.
const finishDeletionsWithin = 20 * time.Second

// New makes the pod workers; Run starts them.
func New(cfg Config, deps Deps) *Worker {
	host := deps.Host
	w := &Worker{
		cfg: cfg, host: host, cri: deps.Runtime, recorder: deps.Recorder,
		lister: deps.Pods, objects: deps.Objects, store: newStore(), crashLoop: newCrashLoop(clock.RealClock{}),
		logs: deps.Logs, images: deps.Images, volumes: deps.Volumes, gpu: deps.GPU, allocatable: deps.Allocatable, publish: deps.Publish,
		ports: deps.Ports,
	}
	if w.cfg.PodIP == "" {
		w.cfg.PodIP = cfg.HostIP
	}
	if w.ports == nil {
		w.ports = noRelays{}
	}
	w.dns = &sandboxDNS{files: host, recorder: deps.Recorder, nodeName: cfg.NodeName, clusterDNS: deps.ClusterDNS}
	w.workers = newWorkers(w.syncPod)
	// On stop, deletions under way are finished, each within what is left of its grace
	// period, all within finishDeletionsWithin (the chart gives Satellite 30 s to stop).
	w.workers.finishWithin = finishDeletionsWithin
	w.workers.finishing = func(uid types.UID) bool {
		return w.store.shortenDeletion(uid, finishDeletionsWithin/2)
	}
	w.probes = prober.NewManager(prober.Config{Runtime: deps.Runtime, Dialer: host, PodIP: cfg.HostIP, Recorder: deps.Recorder,
		Pods: deps.Pods, Notify: w.workers.wake})
	return w
}

// Run runs the pod workers, the prober, the relist and the runtime's event stream until ctx
// ends; it returns after every goroutine it started has stopped.
func (p *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){p.workers.run, p.probes.Run, p.relistLoop, p.eventLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	wg.Wait()
}

// Put records a new or updated pod and wakes its worker.
func (p *Worker) Put(pod *corev1.Pod) {
	p.store.put(pod)
	p.workers.wake(pod.UID)
}

// Delete asks the pod's worker to stop it with the pod's grace period and remove it from
// the host. It may be called many times; the shortest grace period asked for wins.
//
// A pod not taken in yet (deleted while Satellite was starting, before virtual-kubelet
// handed it over) is taken in to be deleted: its containers may be running on the host.
func (p *Worker) Delete(pod *corev1.Pod) {
	if !p.store.markDeleting(pod.UID, gracePeriod(pod)) {
		p.store.put(pod)
		p.store.markDeleting(pod.UID, gracePeriod(pod))
	}
	p.workers.wake(pod.UID)
}

func gracePeriod(pod *corev1.Pod) int64 {
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		return *g
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// Stopped is closed once the pod, being deleted, has no container running on the host (its
// containers stopped with their grace period, preStop hooks run); at once for a pod the worker
// does not know. The pod's API object must not go before: the kubelet deletes it only then
// (its status manager's canBeDeleted). Its sandboxes, files and logs are removed after.
func (p *Worker) Stopped(uid types.UID) <-chan struct{} { return p.store.stoppedChan(uid) }

// Get returns the pod as last published, nil when it is not on the node.
func (p *Worker) Get(namespace, name string) *corev1.Pod { return p.store.get(namespace, name) }

// List returns every pod on the node.
func (p *Worker) List() []*corev1.Pod { return p.store.list() }

// Phases counts the node's pods by the phase last published; a pod not given a status yet
// counts as Pending, as the API shows it.
func (p *Worker) Phases() map[corev1.PodPhase]int { return p.store.phases() }
