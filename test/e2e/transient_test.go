package e2e

import "testing"

// TestKubeletTransients: the kubelet's lone FailedMount is not compared; a Satellite node's
// own FailedMount, or one on both, still is.
func TestKubeletTransients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want, out string }{
		{"Normal Created, Normal Started", "Normal Created, Normal Started, Warning FailedMount", "Normal Created, Normal Started"},
		{"Normal Created, Warning FailedMount", "Normal Created, Warning FailedMount", "Normal Created, Warning FailedMount"},
		{"Normal Created, Warning FailedMount", "Normal Created", "Normal Created"},
		{"Normal Created", "Normal Created, Warning BackOff", "Normal Created, Warning BackOff"},
	} {
		if out := withoutKubeletTransients(tc.got, tc.want); out != tc.out {
			t.Errorf("withoutKubeletTransients(%q, %q) = %q, want %q", tc.got, tc.want, out, tc.out)
		}
	}
}
