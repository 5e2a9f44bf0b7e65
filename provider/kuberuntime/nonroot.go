package kuberuntime

import (
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runAsNonRoot is checked as the kubelet checks it before creating a container
// (kuberuntime/security_context_others.go VerifyRunAsNonRoot): against runAsUser when one is
// set, else against the user the image runs as, from the runtime's ImageStatus.

// effectiveRunAs is the container's runAsNonRoot and runAsUser, the container's winning over
// the pod's (securitycontext.DetermineEffectiveSecurityContext).
func effectiveRunAs(pod *corev1.Pod, c *corev1.Container) (nonRoot bool, user *int64) {
	var nr *bool
	if psc := pod.Spec.SecurityContext; psc != nil {
		nr, user = psc.RunAsNonRoot, psc.RunAsUser
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsNonRoot != nil {
			nr = csc.RunAsNonRoot
		}
		if csc.RunAsUser != nil {
			user = csc.RunAsUser
		}
	}
	return nr != nil && *nr, user
}

// NeedsImageUser reports whether the check has to ask the runtime for the image's user.
func NeedsImageUser(pod *corev1.Pod, c *corev1.Container) bool {
	nonRoot, user := effectiveRunAs(pod, c)
	return nonRoot && user == nil
}

// ImageUser is the user an image runs as, the kubelet's way (getImageUser): its numeric UID,
// else its user name, else root.
func ImageUser(img *runtimeapi.Image) (uid *int64, username string) {
	switch {
	case img != nil && img.Uid != nil:
		v := img.Uid.Value
		return &v, ""
	case img != nil && img.Username != "":
		return nil, img.Username
	}
	return new(int64), ""
}

// VerifyRunAsNonRoot refuses a container that would run as root under runAsNonRoot, with the
// kubelet's messages.
func VerifyRunAsNonRoot(pod *corev1.Pod, c *corev1.Container, uid *int64, username string) error {
	nonRoot, user := effectiveRunAs(pod, c)
	switch {
	case !nonRoot:
		return nil
	case user != nil && *user == 0:
		return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", formatPod(pod), c.Name)
	case user != nil:
		return nil
	case uid == nil && username != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", username, formatPod(pod), c.Name)
	case uid != nil && *uid == 0:
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", formatPod(pod), c.Name)
	case uid != nil:
		if errs := validation.IsValidUserID(*uid); len(errs) > 0 {
			return fmt.Errorf("container has runAsNonRoot and image has an invalid user id (%d). (Must be 1-(%d)): %s (pod: %q, container: %s)",
				*uid, math.MaxInt32, strings.Join(errs, "; "), formatPod(pod), c.Name)
		}
	}
	return nil
}

// formatPod is the kubelet's format.Pod: name_namespace(uid).
func formatPod(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}
