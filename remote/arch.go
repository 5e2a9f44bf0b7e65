package remote

// GoArch maps a host's `uname -m` to the GOARCH name of its architecture, the name Kubernetes
// uses in kubernetes.io/arch and Satellite's helper binaries carry; an unknown machine is
// returned as it is.
func GoArch(machine string) string {
	switch machine {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	case "":
		return ""
	}
	return machine
}
