#!/usr/bin/env bash
# Builds the pinned third-party binaries the local environment needs from the Go module proxy
# and caches them outside the repository, keyed by version, so that later runs are instant:
#   $SATELLITE_CACHE/kubernetes-<v>/  kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
#   $SATELLITE_CACHE/kube-proxy-<v>/  kube-proxy (the reference node's Services)
#   $SATELLITE_CACHE/coredns-<v>/     coredns (the cluster's DNS, run on the reference node)
#   $SATELLITE_CACHE/etcd-<v>/        etcd
#   $SATELLITE_CACHE/containerd-<v>/  containerd ctr containerd-shim-runc-v2
#   $SATELLITE_CACHE/helm-<v>/        helm (the chart's end-to-end test installs with it)
#   $SATELLITE_CACHE/metrics-server-<v>/ metrics-server (`kubectl top` in the local environment)
# Each directory is written to a temporary name and renamed when complete.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.sh
. "$here/versions.sh"

mkdir -p "$SATELLITE_CACHE"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

# build_module DEST MODULE@VERSION GO_MOD_EXTRA LDFLAGS PKG...
# In PHASE=fetch it only resolves and downloads the modules (go get, in DEST.work), which is
# network-bound: the components fetch at once. In PHASE=build it compiles, which is CPU-bound:
# one component after another.
build_module() {
  local dest=$1 req=$2 extra=$3 ldflags=$4; shift 4
  [ -d "$dest" ] && return 0
  local work=$dest.work
  if [ "${PHASE:-build}" = fetch ] || [ ! -f "$work/.fetched" ]; then
    rm -rf "$work" && mkdir -p "$work"
    printf 'module satellite.local/deps\n\ngo 1.25.0\n%s\n' "$extra" >"$work/go.mod"
    local pkgs=() p; for p in "$@"; do pkgs+=("$p@${req#*@}"); done
    (cd "$work" && go get "${pkgs[@]}" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\|finding\)' >&2 || true)
    (cd "$work" && go list -deps "$@" >/dev/null) # fails here, not later, on a bad fetch
    touch "$work/.fetched"
    [ "${PHASE:-build}" = fetch ] && return 0
  fi
  mkdir -p "$dest.tmp"
  (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$dest.tmp/" "$@")
  rm -rf "$dest" "$work" && mv "$dest.tmp" "$dest"
  echo "built $dest"
}

k8s_replace() {
  local dir; dir=$(cd "$(mktemp -d)" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local staging="v0${KUBERNETES_VERSION#v1}"
  echo "replace ("
  sed -n '/^replace (/,/^)/p' "$dir/go.mod" | awk '/=>/ {print "\t" $1 " => " $1 " '"$staging"'"}'
  echo ")"
}

k8s() {
  local dest="$SATELLITE_CACHE/kubernetes-$KUBERNETES_VERSION"
  [ -d "$dest" ] && return 0
  local v=$KUBERNETES_VERSION minor; minor=$(echo "$v" | cut -d. -f2)
  local pkg=k8s.io/component-base/version
  local ld="-s -w -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  build_module "$dest" "k8s.io/kubernetes@$v" "$(k8s_replace)" "$ld" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl
}

# kube_proxy is built apart from the other Kubernetes binaries, so that a cache made before it
# was needed stays valid.
kube_proxy() {
  local dest="$SATELLITE_CACHE/kube-proxy-$KUBERNETES_VERSION"
  [ -d "$dest" ] && return 0
  local v=$KUBERNETES_VERSION minor; minor=$(echo "$v" | cut -d. -f2)
  local pkg=k8s.io/component-base/version
  build_module "$dest" "k8s.io/kubernetes@$v" "$(k8s_replace)" \
    "-s -w -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" \
    k8s.io/kubernetes/cmd/kube-proxy
}

# coredns builds CoreDNS with the plugins of kubeadm's Corefile and no others, as CoreDNS
# documents a build with a plugin set of one's own (a main package importing coremain and the
# plugins): its full build compiles every cloud provider's SDK, four times as long.
coredns() {
  local v=$COREDNS_VERSION dest="$SATELLITE_CACHE/coredns-$COREDNS_VERSION"
  [ -d "$dest" ] && return 0
  local work=$dest.work
  if [ "${PHASE:-build}" = fetch ] || [ ! -f "$work/.fetched" ]; then
    rm -rf "$work" && mkdir -p "$work"
    printf 'module satellite.local/coredns\n\ngo 1.25.0\n' >"$work/go.mod"
    cat >"$work/main.go" <<'GO'
// Command coredns is CoreDNS with the plugins of kubeadm's Corefile.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func init() {
	// The order of CoreDNS's plugin.cfg.
	dnsserver.Directives = []string{"reload", "health", "ready", "log", "errors", "loadbalance", "cache", "loop", "kubernetes", "forward"}
}

func main() { coremain.Run() }
GO
    (cd "$work" && go get "github.com/coredns/coredns@$v" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\|finding\)' >&2 || true)
    (cd "$work" && go mod tidy 2>&1 | grep -v '^go: \(downloading\|finding\)' >&2 || true)
    touch "$work/.fetched"
    [ "${PHASE:-build}" = fetch ] && return 0
  fi
  mkdir -p "$dest.tmp"
  (cd "$work" && go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$v" -o "$dest.tmp/coredns" .)
  rm -rf "$dest" "$work" && mv "$dest.tmp" "$dest"
  echo "built $dest"
}

etcd() {
  build_module "$SATELLITE_CACHE/etcd-$ETCD_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "" "-s -w" \
    go.etcd.io/etcd/server/v3
  # go names the binary of a .../server/v3 package "server".
  local d="$SATELLITE_CACHE/etcd-$ETCD_VERSION"
  if [ -x "$d/server" ] && [ ! -x "$d/etcd" ]; then mv "$d/server" "$d/etcd"; fi
}

containerd() {
  local v=$CONTAINERD_VERSION m=github.com/containerd/containerd/v2
  build_module "$SATELLITE_CACHE/containerd-$v" "$m@$v" "" "-s -w -X $m/version.Version=$v" \
    $m/cmd/containerd $m/cmd/ctr $m/cmd/containerd-shim-runc-v2
}

helm() {
  local v=$HELM_VERSION m=helm.sh/helm/v4
  build_module "$SATELLITE_CACHE/helm-$v" "$m@$v" "" "-s -w -X $m/internal/version.version=$v" $m/cmd/helm
}

metrics_server() {
  local v=$METRICS_SERVER_VERSION p=k8s.io/client-go/pkg/version
  # Its Makefile's version flags: metrics-server reports client-go's version variables.
  build_module "$SATELLITE_CACHE/metrics-server-$v" "sigs.k8s.io/metrics-server@$v" "" \
    "-s -w -X $p.gitVersion=$v -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
}

what=${1:-all}
case $what in
  all)
    start=$SECONDS
    pids=()
    for c in etcd containerd helm k8s kube_proxy coredns metrics_server; do
      PHASE=fetch "$c" & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    if [ $((SECONDS - start)) -gt 1 ]; then echo "fetched the components' modules in $((SECONDS - start)) s"; fi
    for c in etcd containerd helm k8s kube_proxy coredns metrics_server; do "$c"; done
    if [ $((SECONDS - start)) -gt 1 ]; then echo "built the components in $((SECONDS - start)) s"; fi
    ;;
  *) "$what" ;;
esac
