// Package subpath is the host side of a volumeMount's subPath: it resolves the path inside
// its volume without letting a symlink planted by a container lead outside it, and
// bind-mounts what it opened where the container's mount will take it from.
//
// A subPath names a path inside a volume that containers of the pod can write, so a
// container can replace any component with a symlink (to "/", to "..", to another tenant's
// files). containerd follows symlinks in a mount's source, so the source handed to it must
// not be a path that can still change. This is the kubelet's answer to CVE-2017-1002101
// (k8s.io/kubernetes pkg/volume/util/subpath), done the same way: symlinks are resolved once
// and the result must lie within the volume; the resolved path is then opened one component
// at a time with openat(O_PATH|O_NOFOLLOW), so a symlink swapped in after the check fails the
// open instead of being followed; and the opened file is bind-mounted through
// /proc/self/fd/<n> onto a target under the pod's directory that only root can change
// (<pod dir>/volume-subpaths/<volume>/<container>/<index>). containerd mounts that target.
//
// It runs on the host, in the satellite-subpath helper (cmd/satellite-subpath) that
// Satellite copies there over SFTP and checks by its SHA-256: the host has sshd and
// containerd, and no interpreter Satellite can count on.
package subpath
