// Package kuberuntime turns a pod and its containers into CRI configuration, as the kubelet's
// pkg/kubelet/kuberuntime does: the sandbox (sandbox.go), the container with its security
// context and resources (container.go, resources.go), the downward API (downward.go), the
// sandbox's DNS (dns.go), admission (admission.go), the runAsNonRoot check (nonroot.go), and
// the labels that tie CRI objects to pods and nodes (labels.go). The
// container's environment is still resolved by package provider (env.go).
//
// It is pure: what the translation needs from the world (the Services, ConfigMaps and
// Secrets, the host's resolv.conf, the node's allocatable, the image's user) comes in as
// arguments or through small interfaces, and events it would have recorded are returned to
// the caller, which does the I/O.
package kuberuntime
