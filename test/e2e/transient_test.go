package e2e

import "testing"

// TestKubeletTransients: the kubelet's lone FailedMount, or lone FailedToRetrieveImagePullSecret
// with the failed pull it causes, is not compared; a Satellite node's own, or one on both, and
// a failed pull without it, still are.
func TestKubeletTransients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want, out string }{
		{"Normal Created, Normal Started", "Normal Created, Normal Started, Warning FailedMount", "Normal Created, Normal Started"},
		{"Normal Created, Warning FailedMount", "Normal Created, Warning FailedMount", "Normal Created, Warning FailedMount"},
		{"Normal Created, Warning FailedMount", "Normal Created", "Normal Created"},
		{"Normal Created", "Normal Created, Warning BackOff", "Normal Created, Warning BackOff"},
		{"Normal Created, Normal Pulled, Normal Pulling, Normal Started",
			"Normal BackOff, Normal Created, Normal Pulled, Normal Pulling, Normal Started, Warning Failed, Warning FailedToRetrieveImagePullSecret",
			"Normal Created, Normal Pulled, Normal Pulling, Normal Started"},
		{"Normal BackOff, Normal Pulling, Warning Failed, Warning FailedToRetrieveImagePullSecret",
			"Normal BackOff, Normal Pulling, Warning Failed, Warning FailedToRetrieveImagePullSecret",
			"Normal BackOff, Normal Pulling, Warning Failed, Warning FailedToRetrieveImagePullSecret"},
		{"Normal Pulling", "Normal BackOff, Normal Pulling, Warning Failed", "Normal BackOff, Normal Pulling, Warning Failed"},
	} {
		if out := withoutKubeletTransients(tc.got, tc.want); out != tc.out {
			t.Errorf("withoutKubeletTransients(%q, %q) = %q, want %q", tc.got, tc.want, out, tc.out)
		}
	}
}
