// Package volumes makes a pod's volumes and the kubelet's per-pod files ready on the host,
// and gives each container its mounts: emptyDir (on tmpfs when memory-backed), hostPath
// (its type checked), configMap, secret, downward API and projected volumes (service account
// tokens from the TokenRequest API), subPaths bound by the satellite-subpath helper, the pod's
// hosts file and its containers' termination message files.
//
// Everything lives on the host under Config.PodDir, one 0700 directory per pod named like its
// log directory (<namespace>_<name>_<uid>), removed with the pod. Secret and projected volumes
// are tmpfs mounts, so their content never reaches the host's disk; file volumes are written
// as the kubelet's atomic writer writes them (atomic.go), their content on a command's
// standard input, never in a command line.
//
// It mirrors the kubelet's pkg/kubelet/volumemanager with the volume plugins it uses
// (pkg/volume/{emptydir,hostpath,configmap,secret,downwardapi,projected}, util/subpath) and
// the pod-directory part of kubelet_pods.go (makeMounts, makeHostsMount). The pod worker
// calls Manager.SetUp whenever Due (its containers wait until Ready; the content follows the
// API every resync), Mounts and FileMounts as it creates a container, Remove with the pod's
// other resources, and Forget once the pod is gone. The host is reached through the small
// Host interface, so the package knows nothing of Provider.
package volumes
