// Package network puts the pods of a Satellite node on the cluster's network.
//
// A pod on a Satellite node runs in the remote host's network namespace, and the host is not
// on the cluster's network. The cluster reaches such a pod at the node's InternalIP, which is
// Satellite's own pod IP: status.podIP is that address, as the kubelet reports a hostNetwork
// pod's IP as its node's. Satellite listens there on every port the pods on the host declare
// (containerPort) and every port a Service targets on them (the EndpointSlices' ports), and
// relays each connection over the SSH connection to that port on the host (Relays). Two pods
// that want the same port share one network, the host's: the later one is refused at
// admission, as the kubelet refuses a hostPort conflict (Conflict).
//
// The package knows the pod spec and net.Conn; the host is a Dialer (remote.Host.DialTCP).
package network
