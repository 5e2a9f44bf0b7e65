// Package images makes the images of a pod's containers present on the host before they are
// created: the pull policy, the credentials of the pod's image pull secrets and of a registry
// credential provider (keyring.go), the records of who pulled which image on the host
// (pullrecords.go), and the image-pull back-off of each container, with the kubelet's events
// and waiting reasons.
//
// It mirrors the kubelet's pkg/kubelet/images (image manager, pull manager) and
// pkg/credentialprovider (keyring). The pod worker calls Manager.Ensure before it creates a
// container and Manager.Forget once the pod is gone; it sets the container's waiting status
// from the *WaitingError that Ensure returns.
package images
