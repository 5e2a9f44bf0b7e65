// Package remote is Satellite's only way to a remote host: one SSH connection per host
// (golang.org/x/crypto/ssh, host keys always verified against known_hosts), and over it the
// CRI v1 runtime and image services of the host's containerd (gRPC dialed through a
// "direct-streamlocal@openssh.com" channel to the containerd socket), commands and files on the
// host, and TCP connections to the host's loopback ("direct-tcpip") for CRI streaming URLs.
//
// It knows nothing of Kubernetes objects. Errors crossing its boundary are native Go errors:
// gRPC status codes are translated to the sentinels in errors.go, and command failures carry
// the remote exit status in *ExitError.
package remote
