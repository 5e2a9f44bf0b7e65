// Package logs serves and keeps the containers' CRI log files on the host: it formats them
// for kubectl logs (a one-shot read, a tail, or a follower that survives rotation), rotates
// them as they grow, picks the container instance a request means from the pod status, and
// reads an exited container's termination message.
//
// It mirrors the kubelet's pkg/kubelet/logs (the container log manager and the CRI log
// reader) and the termination-message part of pkg/kubelet/kuberuntime. The provider builds
// one Manager with New, runs its rotation with Run, and hands it the container IDs it has
// chosen; the files are reached over SFTP through the small Files interface and the runtime
// through Runtime, so the package knows nothing of Provider.
package logs
