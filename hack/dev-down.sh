#!/usr/bin/env bash
# Stops everything hack/dev-up.sh started (by pid), kills the containers its containerds ran,
# and removes the network namespace, mounts and state. Keeps the built images and the
# caches of built binaries.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

kill_containers() { # runtime-state-dir
  local root=$1/runc/k8s.io id
  [ -d "$root" ] || return 0
  for id in $(runc --root "$root" list -q 2>/dev/null); do
    runc --root "$root" kill -a "$id" KILL 2>/dev/null
    runc --root "$root" delete -f "$id" 2>/dev/null
  done
  pkill -9 -f "containerd-shim-runc-v2 .*-address $1/containerd.sock" 2>/dev/null
}

[ "$(id -u)" = 0 ] || die "run as root"
stop metrics-server satellite satellite-compat kubelet kube-proxy
# kube-proxy's own cleanup removes its chains and rules, and only those.
[ -x "$KP_BIN/kube-proxy" ] && "$KP_BIN/kube-proxy" --cleanup >/dev/null 2>&1
for r in host host-compat ref; do kill_containers "$RUN/$r"; done
stop host-containerd host-compat-containerd ref-containerd host-sshd host-registry
stop kube-scheduler kube-controller-manager kube-apiserver etcd
# Mounts left by the kubelet and the reference containerd (the host's live in its namespace).
awk -v a="$DEV/" -v b="$RUN/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
ip netns del "$NETNS" 2>/dev/null
ip link del "$VETH_ROOT" 2>/dev/null
# The reference pods' network namespaces (CNI's cni-*), found by their veths on the
# reference bridge, so that no one else's is touched.
for ns in $(ip -o link show master satref0 2>/dev/null | grep -o 'link-netns [^ ]*' | awk '{print $2}' | sort -u); do
  ip netns del "$ns" 2>/dev/null
done
ip link del satref0 2>/dev/null
find "$DEV" -mindepth 1 -maxdepth 1 ! -name images -exec rm -rf {} + 2>/dev/null
rm -rf "$RUN"
log "the local environment is down"
exit 0
