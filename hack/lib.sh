# Shared paths and helpers of the local environment. Sourced by hack/dev-*.sh.
# shellcheck shell=bash
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HACK/.." && pwd)
. "$HACK/versions.sh"

DEV=$REPO/_output/dev            # state, logs, pki, the env file
RUN=/run/satellite-dev           # sockets and runtime state (short paths for unix sockets)
NETNS=sat-host                   # the remote host's network namespace
VETH_ROOT=sat-veth0 VETH_HOST=sat-veth1
CP_IP=10.213.0.1                 # control plane and reference node (root namespace)
HOST_IP=10.213.0.2               # the remote host (its own namespace)
SAT_IP=10.213.0.3                # Satellite's kubelet API (node on containerd 2.x)
COMPAT_IP=10.213.0.4             # Satellite's kubelet API (node on Debian's containerd 1.6)
REGION=us-west-2
SAT_NODE=fargate-ip-10-213-0-3.$REGION.compute.internal
COMPAT_NODE=fargate-ip-10-213-0-4.$REGION.compute.internal
REF_NODE=reference-node
K8S_BIN=$SATELLITE_CACHE/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$SATELLITE_CACHE/etcd-$ETCD_VERSION
CTRD_BIN=$SATELLITE_CACHE/containerd-$CONTAINERD_VERSION
MS_BIN=$SATELLITE_CACHE/metrics-server-$METRICS_SERVER_VERSION
KP_BIN=$SATELLITE_CACHE/kube-proxy-$KUBERNETES_VERSION
CDNS_BIN=$SATELLITE_CACHE/coredns-$COREDNS_VERSION
CLUSTER_DNS=10.96.0.10           # kube-system/kube-dns's ClusterIP
COREDNS_IMAGE=localhost/satellite/coredns:${COREDNS_VERSION#v}
SERVICE_CIDR=10.96.0.0/16        # the cluster's Service range (kube-apiserver's)
REF_POD_CIDR=10.214.0.0/24       # the reference node's pod range (its bridge CNI)
REGISTRY=$HOST_IP:5000           # an image registry on the remote host (TLS, htpasswd users)
# A private ECR registry's name: the host's containerd pulls it from $REGISTRY (hosts.toml), and
# Satellite gets its credentials from a stand-in of ECR's API in the tests.
ECR_REGISTRY=111122223333.dkr.ecr.$REGION.amazonaws.com
BUSYBOX_IMAGE=localhost/satellite/busybox:1.36
PAUSE_IMAGE=localhost/satellite/pause:3.10
INCLUSTER_IMAGE=localhost/satellite/incluster:1.0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# start NAME CMD...: runs CMD in the background in its own session, appends to $DEV/logs/NAME.log,
# records its pid in $DEV/pids/NAME.pid.
start() {
  local name=$1; shift
  mkdir -p "$DEV/logs" "$DEV/pids"
  setsid "$@" >>"$DEV/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$DEV/pids/$name.pid"
}

# start_in_host NAME CMD...: start, inside the remote host's network namespace. nsenter, not
# `ip netns exec`: the latter remounts /sys, which hides the cgroup mounts runc needs.
start_in_host() {
  local name=$1; shift
  start "$name" nsenter --net="/run/netns/$NETNS" "$@"
}

stop() { # name...: SIGTERM, then SIGKILL after 10 s
  local name pid
  for name in "$@"; do
    [ -f "$DEV/pids/$name.pid" ] || continue
    pid=$(cat "$DEV/pids/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$DEV/pids/$name.pid"
  done
}

alive() { local f=$DEV/pids/$1.pid; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# wait_for WHAT SECONDS CMD...: retries CMD until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what (logs: $DEV/logs)"
    sleep 0.2
  done
}

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$DEV/admin.kubeconfig" "$@"; }
