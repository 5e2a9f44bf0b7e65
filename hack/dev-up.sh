#!/usr/bin/env bash
# Brings up the local environment in the background and returns once the Satellite nodes are
# Ready: a real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler),
# a "remote host" in its own network namespace (sshd + containerd + runc, no kubelet, no agent;
# a second containerd there is Debian's 1.6, for the compatibility run), a reference node run by
# a real kubelet, and two Satellites, one per containerd of the host.
# Idempotent: when everything is up it only prints how to use it. Needs root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$HACK/pki.sh"

[ "$(id -u)" = 0 ] || die "the local environment needs root (network namespaces, containerd): run as root"

install_packages() {
  local missing=()
  for b in runc sshd busybox ip openssl docker-registry htpasswd skopeo iptables; do command -v "$b" >/dev/null || missing+=("$b"); done
  [ -x /usr/bin/containerd ] && [ -x /usr/lib/cni/loopback ] || missing+=(containerd)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: $DEBIAN_PACKAGES"
  bash "$HACK/install-packages.sh"
}

build() {
  bash "$HACK/build-deps.sh"
  log "building satellite"
  bash "$HACK/build.sh"
  mkdir -p "$DEV/images"
  [ -f "$DEV/images/busybox.tar" ] || bash "$HACK/mkimage.sh" "$DEV/images/busybox.tar" "$BUSYBOX_IMAGE"
  [ -f "$DEV/images/pause.tar" ] || bash "$HACK/mkimage.sh" "$DEV/images/pause.tar" "$PAUSE_IMAGE" '["/bin/sleep"]' '["2147483647"]'
  # The registry's image: busybox with a config of its own, so that it is another image than
  # the preloaded busybox (an image pulled with a pull secret serves only pods with one).
  # The in-cluster client of the tests (test/incluster), in an image of its own.
  (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$DEV/images/incluster.new" ./test/incluster)
  if ! cmp -s "$DEV/images/incluster.new" "$DEV/images/incluster"; then
    mv "$DEV/images/incluster.new" "$DEV/images/incluster"
    EXTRA_BIN=$DEV/images/incluster bash "$HACK/mkimage.sh" "$DEV/images/incluster.tar" "$INCLUSTER_IMAGE" '["/bin/incluster"]'
  fi
  rm -f "$DEV/images/incluster.new"
  # CoreDNS's image, for the reference node alone.
  [ -f "$DEV/images/coredns-$COREDNS_VERSION.tar" ] || EXTRA_BIN=$CDNS_BIN/coredns bash "$HACK/mkimage.sh" \
    "$DEV/images/coredns-$COREDNS_VERSION.tar" "$COREDNS_IMAGE" '["/bin/coredns"]'
  [ -f "$DEV/images/private.tar" ] || bash "$HACK/mkimage.sh" "$DEV/images/private.tar" localhost/satellite/private:1.0 '["/bin/sh"]' '["-c","echo private"]'
}

network() {
  ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
  if ! ip link show "$VETH_ROOT" >/dev/null 2>&1; then
    ip link add "$VETH_ROOT" type veth peer name "$VETH_HOST"
    ip link set "$VETH_HOST" netns "$NETNS"
  fi
  # `ip addr replace` is idempotent: a rerun (or a test that took the link down) finds it as is.
  for a in $CP_IP $SAT_IP $COMPAT_IP; do
    ip addr replace "$a/24" dev "$VETH_ROOT"
  done
  ip link set "$VETH_ROOT" up
  nsenter --net="/run/netns/$NETNS" sh -c "ip addr replace $HOST_IP/24 dev $VETH_HOST && ip link set $VETH_HOST up && ip link set lo up"
}

control_plane() {
  alive etcd || start etcd "$ETCD_BIN/etcd" --data-dir "$DEV/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 --log-level warn
  wait_for etcd 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/2379"
  local p=$DEV/pki
  local apiserver=("$K8S_BIN/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 --bind-address "$CP_IP" --advertise-address "$CP_IP" --secure-port 6443 \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" --client-ca-file "$p/ca.crt" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$p/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$p/sa.pub" \
    --service-account-signing-key-file "$p/sa.key" --api-audiences https://kubernetes.default.svc \
    --service-cluster-ip-range 10.96.0.0/16 --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction --allow-privileged=true --profiling=false \
    --requestheader-client-ca-file "$p/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
    --requestheader-username-headers X-Remote-User \
    --proxy-client-cert-file "$p/front-proxy-client.crt" --proxy-client-key-file "$p/front-proxy-client.key" \
    --enable-aggregator-routing=true)
  # An apiserver started by an older dev-up.sh (other flags) is restarted with these.
  if alive kube-apiserver && [ "$(cat "$DEV/kube-apiserver.args" 2>/dev/null)" != "${apiserver[*]}" ]; then
    log "kube-apiserver's flags changed: restarting it"
    stop kube-apiserver
  fi
  alive kube-apiserver || { start kube-apiserver "${apiserver[@]}"; echo "${apiserver[*]}" >"$DEV/kube-apiserver.args"; }
  wait_for kube-apiserver 90 "$K8S_BIN/kubectl" --kubeconfig "$DEV/admin.kubeconfig" get --raw /readyz
  alive kube-controller-manager || start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$DEV/admin.kubeconfig" --authentication-kubeconfig "$DEV/admin.kubeconfig" --authorization-kubeconfig "$DEV/admin.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" --use-service-account-credentials
  alive kube-scheduler || start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$DEV/admin.kubeconfig" \
    --authentication-kubeconfig "$DEV/admin.kubeconfig" --authorization-kubeconfig "$DEV/admin.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false
  wait_for "the default service account" 60 kubectl_admin get serviceaccount default -n default
}

# containerd_config NAME SOCKETDIR CNI-CONF VERSION: a containerd config in $DEV/NAME, in the
# format of containerd 2.x (VERSION 3) or 1.6 (VERSION 2). Each instance has its own root,
# state, sockets and runc root, so several run side by side and `make dev-down` can kill
# exactly the containers of each.
containerd_config() {
  local name=$1 run=$2 cni=$3 version=$4 d=$DEV/$1
  local disabled='"io.containerd.internal.v1.tracing"'
  [ "$version" = 3 ] && disabled="$disabled, \"io.containerd.nri.v1.nri\", \"io.containerd.tracing.processor.v1.otlp\""
  mkdir -p "$d" "$run"
  {
    cat <<TOML
version = $version
disabled_plugins = [$disabled]
root = "$d/root"
state = "$run/state"
[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[debug]
  address = ""
TOML
    if [ "$version" = 3 ]; then cat <<TOML
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  Root = "$run/runc"
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "$cni"
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "$DEV/registry/hosts"
TOML
    else cat <<TOML
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = "$run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$DEV/registry/hosts"
TOML
    fi
  } >"$d/containerd.toml"
}

loopback_cni() {
  mkdir -p "$1"
  printf '{"cniVersion":"0.4.0","name":"satellite-loopback","plugins":[{"type":"loopback"}]}\n' >"$1/99-loopback.conflist"
}

import_images() { # ctr socket
  local ctr=$1 sock=$2
  wait_for "containerd at $sock" 60 "$ctr" -a "$sock" version
  for img in busybox pause incluster; do
    "$ctr" -a "$sock" -n k8s.io images import --all-platforms "$DEV/images/$img.tar" >/dev/null
  done
}

# registry runs Debian's docker-registry on the host, with TLS from the environment's CA and two
# htpasswd users: satellite (for pull secrets) and AWS (the user of ECR's tokens, which the
# tests' stand-in of ECR's API gives out with its password). An image of busybox is pushed to it
# as $REGISTRY/satellite/private:1.0. Every containerd of the environment trusts it through
# hosts.toml, and reaches $ECR_REGISTRY there too, as a registry mirror would be set up.
registry() {
  local d=$DEV/registry h
  mkdir -p "$d/data" "$d/certs"
  cp "$DEV/pki/ca.crt" "$d/certs/ca.crt"
  for f in password ecr-password; do
    [ -f "$d/$f" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$d/$f")
  done
  if [ ! -f "$d/htpasswd" ]; then
    htpasswd -B -b -c "$d/htpasswd.tmp" satellite "$(cat "$d/password")" 2>/dev/null
    htpasswd -B -b "$d/htpasswd.tmp" AWS "$(cat "$d/ecr-password")" 2>/dev/null
    mv "$d/htpasswd.tmp" "$d/htpasswd"
  fi
  for h in "$REGISTRY" "$ECR_REGISTRY"; do
    mkdir -p "$d/hosts/$h"
    cat >"$d/hosts/$h/hosts.toml" <<TOML
server = "https://$REGISTRY"
[host."https://$REGISTRY"]
  capabilities = ["pull", "resolve"]
  ca = "$d/certs/ca.crt"
TOML
  done
  cat >"$d/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $d/data}
http:
  addr: $REGISTRY
  tls: {certificate: $DEV/pki/registry.crt, key: $DEV/pki/registry.key}
auth:
  htpasswd: {realm: satellite-dev, path: $d/htpasswd}
YAML
  alive host-registry || start_in_host host-registry docker-registry serve "$d/config.yml"
  wait_for "the registry on the host" 30 bash -c "exec 3<>/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:}"
  skopeo --insecure-policy copy --quiet --dest-cert-dir "$d/certs" --dest-creds "satellite:$(cat "$d/password")" \
    "oci-archive:$DEV/images/private.tar" "docker://$REGISTRY/satellite/private:1.0"
}

remote_host() {
  local h=$DEV/host
  mkdir -p "$h" "$DEV/ssh" /run/sshd
  [ -f "$DEV/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C satellite-dev -f "$DEV/ssh/id_ed25519"
  [ -f "$h/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C satellite-dev-host -f "$h/ssh_host_ed25519_key"
  cp "$DEV/ssh/id_ed25519.pub" "$h/authorized_keys"
  echo "$HOST_IP $(cut -d' ' -f1-2 "$h/ssh_host_ed25519_key.pub")" >"$DEV/ssh/known_hosts"
  cat >"$h/sshd_config" <<CFG
ListenAddress $HOST_IP:22
HostKey $h/ssh_host_ed25519_key
PidFile $RUN/sshd.pid
AuthorizedKeysFile $h/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
Subsystem sftp /usr/lib/openssh/sftp-server
# The host shares this machine's /root, whose .bashrc may run what an interactive shell wants
# (here pyenv init: 100 ms of processes before every command, which Satellite's volume and
# file scripts would all pay). A GPU host's stock .bashrc returns at once for a non-interactive
# shell; with SHLVL=1 bash skips the .bashrc it sources for sshd's commands, as if it did.
SetEnv SHLVL=1
# The layer-3 tunnel that carries the host's pods' traffic to the cluster (tun@openssh.com), for
# Satellite's user alone, as docs/networking.md asks of a host.
Match User root
  PermitTunnel point-to-point
CFG
  mkdir -p "$RUN"
  alive host-sshd || start_in_host host-sshd /usr/sbin/sshd -D -e -f "$h/sshd_config"
  loopback_cni "$h/cni"
  containerd_config host "$RUN/host" "$h/cni" 3
  alive host-containerd || start_in_host host-containerd env PATH="$CTRD_BIN:$PATH" "$CTRD_BIN/containerd" -c "$DEV/host/containerd.toml"
  containerd_config host-compat "$RUN/host-compat" "$h/cni" 2
  alive host-compat-containerd || start_in_host host-compat-containerd env PATH="/usr/bin:$PATH" /usr/bin/containerd -c "$DEV/host-compat/containerd.toml"
  import_images "$CTRD_BIN/ctr" "$RUN/host/containerd.sock"
  import_images /usr/bin/ctr "$RUN/host-compat/containerd.sock"
  wait_for "sshd on the host" 30 ssh -i "$DEV/ssh/id_ed25519" -o UserKnownHostsFile="$DEV/ssh/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes root@"$HOST_IP" true
}

reference_node() {
  local r=$DEV/ref
  mkdir -p "$r/cni" "$r/logs" "$r/kubelet"
  cat >"$r/cni/10-bridge.conflist" <<JSON
{"cniVersion":"0.4.0","name":"satellite-ref","plugins":[{"type":"bridge","bridge":"satref0","isGateway":true,"ipMasq":false,
"ipam":{"type":"host-local","dataDir":"$r/ipam","ranges":[[{"subnet":"10.214.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
{"type":"loopback"}]}
JSON
  containerd_config ref "$RUN/ref" "$r/cni" 3
  alive ref-containerd || start ref-containerd env PATH="$CTRD_BIN:$PATH" "$CTRD_BIN/containerd" -c "$r/containerd.toml"
  import_images "$CTRD_BIN/ctr" "$RUN/ref/containerd.sock"
  "$CTRD_BIN/ctr" -a "$RUN/ref/containerd.sock" -n k8s.io images import "$DEV/images/coredns-$COREDNS_VERSION.tar" >/dev/null
  cat >"$r/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $CP_IP
port: 10250
readOnlyPort: 0
tlsCertFile: $DEV/pki/reference-serving.crt
tlsPrivateKeyFile: $DEV/pki/reference-serving.key
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $DEV/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
containerRuntimeEndpoint: unix://$RUN/ref/containerd.sock
podLogsDir: $r/logs
registerWithTaints:
- {key: reference, value: "true", effect: NoSchedule}
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
resolvConf: /etc/resolv.conf
clusterDNS: [$CLUSTER_DNS]
clusterDomain: cluster.local
YAML
  alive kubelet || start kubelet "$K8S_BIN/kubelet" --config "$r/kubelet.yaml" --kubeconfig "$DEV/reference-kubelet.kubeconfig" \
    --hostname-override "$REF_NODE" --node-ip "$CP_IP" --root-dir "$r/kubelet" --cert-dir "$r/pki" --node-labels satellite.dev/reference=true
}

# kube_proxy runs the real kube-proxy for the reference node, in iptables mode, in the root
# namespace (the reference node's): ClusterIP and NodePort Services work there as on any node,
# and Satellite, whose address is in that namespace, reaches them as its pod would. It changes
# no sysctl (conntrack limits and localhost NodePorts left alone); NodePorts answer on the
# reference node's address only. `make dev-down` stops it and removes its rules.
kube_proxy() {
  local r=$DEV/ref
  # kube-proxy exits when its configuration file changes: it is rewritten only when it differs.
  cat >"$r/kube-proxy.yaml.new" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $DEV/kube-proxy.kubeconfig}
hostnameOverride: $REF_NODE
mode: iptables
clusterCIDR: $REF_POD_CIDR
bindAddress: $CP_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$CP_IP/32]
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  if cmp -s "$r/kube-proxy.yaml.new" "$r/kube-proxy.yaml"; then rm "$r/kube-proxy.yaml.new"; else mv "$r/kube-proxy.yaml.new" "$r/kube-proxy.yaml"; fi
  alive kube-proxy || start kube-proxy "$KP_BIN/kube-proxy" --config "$r/kube-proxy.yaml"
  wait_for "kube-proxy's first sync" 60 bash -c "iptables -t nat -S KUBE-SERVICES | grep -q default/kubernetes"
}

# host_firewall makes the remote host reach the cluster only as a rented host can, through
# Satellite's SSH connection: in its namespace, new connections from the host out of its
# network interface to the API server and the reference node, to Satellite's addresses, to the
# Service range and to the reference node's pod range are dropped (chain SATELLITE-DEV-OUT),
# and only sshd and the registry on the host take connections from outside (SATELLITE-DEV-IN).
# What the host's pods reach of the cluster, they reach through Satellite's tunnel.
host_firewall() {
  nsenter --net="/run/netns/$NETNS" sh -e <<SH
iptables -N SATELLITE-DEV-OUT 2>/dev/null || iptables -F SATELLITE-DEV-OUT
iptables -C OUTPUT -j SATELLITE-DEV-OUT 2>/dev/null || iptables -I OUTPUT -j SATELLITE-DEV-OUT
iptables -A SATELLITE-DEV-OUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
for d in $CP_IP $SAT_IP $COMPAT_IP $SERVICE_CIDR $REF_POD_CIDR; do iptables -A SATELLITE-DEV-OUT -o $VETH_HOST -d \$d -j DROP; done
iptables -N SATELLITE-DEV-IN 2>/dev/null || iptables -F SATELLITE-DEV-IN
iptables -C INPUT -j SATELLITE-DEV-IN 2>/dev/null || iptables -I INPUT -j SATELLITE-DEV-IN
iptables -A SATELLITE-DEV-IN -i lo -j RETURN
iptables -A SATELLITE-DEV-IN -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
# sshd, the second sshd TestIntegrationHostKeyReplaced starts on 2222, the registry
iptables -A SATELLITE-DEV-IN -i $VETH_HOST -p tcp -m multiport --dports 22,2222,${REGISTRY#*:} -j RETURN
iptables -A SATELLITE-DEV-IN -i $VETH_HOST -j DROP
SH
}

# cluster_dns runs the cluster's DNS as a cluster runs it: CoreDNS in a Deployment on the
# reference node, behind kube-system/kube-dns at $CLUSTER_DNS (hack/dev/coredns.yaml).
cluster_dns() {
  sed -e "s|@DNS_IP@|$CLUSTER_DNS|" -e "s|@REF_NODE@|$REF_NODE|" -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|" "$HACK/dev/coredns.yaml" |
    kubectl_admin apply -f - >/dev/null
  wait_for "CoreDNS (kube-system/coredns available)" 120 kubectl_admin -n kube-system wait --for=condition=Available --timeout=1s deployment/coredns
}

# satellite name node listen-ip socket-dir serving-cert containerd-root debug-port [extra flags]
# serving-cert: a certificate of $DEV/pki, or "csr": requested from the cluster and self-approved.
satellite() {
  local name=$1 node=$2 ip=$3 run=$4 cert=$5 root=$6 debug=$7 extra=${8:-} d=$DEV/$1
  mkdir -p "$d"
  alive "$name" && return 0
  local tls=(--csr-self-approve)
  [ "$cert" = csr ] || tls=(--tls-cert-file "$DEV/pki/$cert.crt" --tls-private-key-file "$DEV/pki/$cert.key")
  start "$name" "$REPO/_output/bin/satellite" --kubeconfig "$DEV/satellite.kubeconfig" \
    --node-name "$node" --node-ip "$ip" --listen-address "$ip:10250" \
    --ssh "root@$HOST_IP:22" --ssh-key "$DEV/ssh/id_ed25519" --known-hosts "$DEV/ssh/known_hosts" \
    --containerd-socket "$run/containerd.sock" --containerd-root "$root" \
    --pod-log-dir "$d/pods" --pod-dir "$d/volumes" --debug-address "127.0.0.1:$debug" $extra \
    "${tls[@]}" --client-ca-file "$DEV/pki/ca.crt" \
    --log-level "${SATELLITE_DEV_LOG_LEVEL:-info}"
}

# metrics_server runs metrics-server on the control plane's address, registered as
# v1beta1.metrics.k8s.io (hack/dev/metrics-server.yaml), so that `kubectl top` works. It
# verifies the kubelets' serving certificates (the reference kubelet's, Satellite's from its
# CSR) against the cluster CA, and they authorize it with SubjectAccessReview.
metrics_server() {
  local p=$DEV/pki
  sed -e "s|@CP_IP@|$CP_IP|" -e "s|@CA_BUNDLE@|$(base64 -w0 "$p/ca.crt")|" "$HACK/dev/metrics-server.yaml" | kubectl_admin apply -f - >/dev/null
  alive metrics-server || start metrics-server "$MS_BIN/metrics-server" \
    --kubeconfig "$DEV/metrics-server.kubeconfig" \
    --authentication-kubeconfig "$DEV/metrics-server.kubeconfig" --authorization-kubeconfig "$DEV/metrics-server.kubeconfig" \
    --bind-address "$CP_IP" --secure-port 4443 \
    --tls-cert-file "$p/metrics-server-serving.crt" --tls-private-key-file "$p/metrics-server-serving.key" \
    --kubelet-certificate-authority "$p/ca.crt" --kubelet-preferred-address-types InternalIP \
    --kubelet-use-node-status-port --metric-resolution 15s
  wait_for "metrics-server (APIService v1beta1.metrics.k8s.io Available)" 60 apiservice_available v1beta1.metrics.k8s.io
}

apiservice_available() { [ "$(kubectl_admin get apiservice "$1" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ]; }

node_ready() { [ "$(kubectl_admin get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }

write_env() {
  cat >"$DEV/env" <<ENV
# Written by hack/dev-up.sh: the local environment's coordinates, in shell syntax.
export KUBECONFIG=$DEV/admin.kubeconfig
export PATH=$K8S_BIN:\$PATH
SATELLITE_NODE=$SAT_NODE
SATELLITE_COMPAT_NODE=$COMPAT_NODE
REFERENCE_NODE=$REF_NODE
HOST_NETNS=$NETNS
HOST_SSH=root@$HOST_IP:22
HOST_SSH_KEY=$DEV/ssh/id_ed25519
HOST_KNOWN_HOSTS=$DEV/ssh/known_hosts
HOST_CONTAINERD_SOCKET=$RUN/host/containerd.sock
HOST_COMPAT_CONTAINERD_SOCKET=$RUN/host-compat/containerd.sock
HOST_POD_LOG_DIR=$DEV/satellite/pods
HOST_COMPAT_POD_LOG_DIR=$DEV/satellite-compat/pods
HOST_POD_DIR=$DEV/satellite/volumes
HOST_COMPAT_POD_DIR=$DEV/satellite-compat/volumes
REFERENCE_CONTAINERD_SOCKET=$RUN/ref/containerd.sock
REFERENCE_ROOT_DIR=$DEV/ref/kubelet
CTR=$CTRD_BIN/ctr
KUBECTL=$K8S_BIN/kubectl
HELM=$SATELLITE_CACHE/helm-$HELM_VERSION/helm
HOST_CONTAINERD_ROOT=$DEV/host/root
SATELLITE_PID=$(cat "$DEV/pids/satellite.pid")
SATELLITE_COMPAT_PID=$(cat "$DEV/pids/satellite-compat.pid")
SATELLITE_API=$SAT_IP:10250
SATELLITE_DEBUG=127.0.0.1:10270
SATELLITE_COMPAT_DEBUG=127.0.0.1:10271
SATELLITE_COMPAT_API=$COMPAT_IP:10250
SATELLITE_LOG=$DEV/logs/satellite.log
METRICS_SERVER_LOG=$DEV/logs/metrics-server.log
TEST_IMAGE=$BUSYBOX_IMAGE
INCLUSTER_IMAGE=$INCLUSTER_IMAGE
REFERENCE_NODE_IP=$CP_IP
KUBERNETES_SERVICE=10.96.0.1:443
CLUSTER_DNS=$CLUSTER_DNS
REGISTRY=$REGISTRY
REGISTRY_USER=satellite
REGISTRY_PASSWORD=$(cat "$DEV/registry/password")
PRIVATE_IMAGE=$REGISTRY/satellite/private:1.0
ECR_REGISTRY=$ECR_REGISTRY
ECR_PASSWORD=$(cat "$DEV/registry/ecr-password")
ENV
}

main() {
  install_packages
  build
  mkdir -p "$DEV" "$RUN"
  make_pki
  network
  control_plane
  kubectl_admin apply -f "$HACK/dev/satellite-rbac.yaml" >/dev/null
  remote_host
  host_firewall
  registry
  reference_node
  kube_proxy
  cluster_dns
  satellite satellite "$SAT_NODE" "$SAT_IP" "$RUN/host" csr "$DEV/host/root" 10270 "--cluster-cidrs=$REF_POD_CIDR"
  # Both Satellites drive one host here: only the first routes the cluster's ranges into it
  # (one host, one set of routes), and the host's pods of the second have no cluster network.
  satellite satellite-compat "$COMPAT_NODE" "$COMPAT_IP" "$RUN/host-compat" compat-serving "$DEV/host-compat/root" 10271 \
    "--node-taints=virtual-kubelet.io/provider=satellite:NoSchedule,satellite.dev/compat=containerd-1.6:NoSchedule --tunnel=false"
  for n in "$SAT_NODE" "$COMPAT_NODE" "$REF_NODE"; do
    wait_for "node $n to be Ready" 120 node_ready "$n"
  done
  metrics_server
  write_env
  cat <<MSG
The local environment is up: Satellite node $SAT_NODE runs its pods on the host $HOST_IP (namespace $NETNS).
  source $DEV/env          # or: export KUBECONFIG=$DEV/admin.kubeconfig
  kubectl get nodes -o wide
  kubectl apply -f examples/deployment.yaml && kubectl get pods -o wide
Logs: $DEV/logs/   Stop: make dev-down
MSG
}

main "$@"
