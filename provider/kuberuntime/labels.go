package kuberuntime

// CRI labels and annotations. The io.kubernetes.* keys are the kubelet's own
// (pkg/kubelet/types/labels.go, pkg/kubelet/kuberuntime/labels.go), so tools that read a
// kubelet host (crictl, containerd's own metrics) read a Satellite host the same way.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"

	// LabelNode marks objects this Satellite node owns; nothing without it is ever touched.
	LabelNode = "satellite.dev/node"
	// LabelInit marks init containers.
	LabelInit = "satellite.dev/init-container"

	AnnotationRestartCount      = "io.kubernetes.container.restartCount"
	AnnotationTerminationPath   = "io.kubernetes.container.terminationMessagePath"
	AnnotationTerminationPolicy = "io.kubernetes.container.terminationMessagePolicy"
	AnnotationGracePeriod       = "io.kubernetes.pod.terminationGracePeriod"
)
