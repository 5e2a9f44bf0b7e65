// Package nodestatus keeps Satellite's node object true to the remote host: it is
// virtual-kubelet's NodeProvider (Ping, NotifyNodeStatus) and builds the node the provider
// registers.
//
// It mirrors the kubelet's pkg/kubelet/nodestatus setters and its node status loop. Every
// Period a Manager checks the SSH link and the CRI runtime's Version and Status, which set the
// Ready condition (KubeletReady or one of the Reason constants) and, on a change, a node event;
// every sixth check, and whenever it was never read, it reads the host's facts (CPUs, memory,
// the disk under containerd's root, kernel, OS, architecture, GPUs) with one shell command.
// Capacity less Config.Reserved is allocatable, as the kubelet computes it. HostDown tells the
// provider's other requests (logs, exec, stats) that the host is known to be unreachable, so
// they fail at once with ErrHostUnreachable. The host, the runtime and the GPU device manager
// are reached through the small Host, Runtime and GPUs interfaces, so the package knows
// nothing of Provider.
package nodestatus
