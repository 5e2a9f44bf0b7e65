package provider

// CRI labels and annotations. The io.kubernetes.* keys are the kubelet's own
// (pkg/kubelet/types/labels.go, pkg/kubelet/kuberuntime/labels.go), so tools that read a
// kubelet host (crictl, containerd's own metrics) read a Satellite host the same way.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"

	// labelNode marks objects this Satellite node owns; nothing without it is ever touched.
	labelNode = "satellite.dev/node"
	// labelInit marks init containers.
	labelInit = "satellite.dev/init-container"

	annotationRestartCount      = "io.kubernetes.container.restartCount"
	annotationTerminationPath   = "io.kubernetes.container.terminationMessagePath"
	annotationTerminationPolicy = "io.kubernetes.container.terminationMessagePolicy"
	annotationGracePeriod       = "io.kubernetes.pod.terminationGracePeriod"
)
