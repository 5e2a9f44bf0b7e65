package remote

import "testing"

func TestGoArch(t *testing.T) {
	t.Parallel()
	for machine, want := range map[string]string{
		"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"ppc64le": "ppc64le", "s390x": "s390x", "": "", "riscv64": "riscv64",
	} {
		if got := GoArch(machine); got != want {
			t.Errorf("GoArch(%q) = %q, want %q", machine, got, want)
		}
	}
}
