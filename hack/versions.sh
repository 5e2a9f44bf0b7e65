# Pinned versions of everything the local environment builds or installs. Sourced by hack/*.sh.
# Changing a version changes the cache key, so the next run rebuilds just that component.
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.6}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.2.1}
HELM_VERSION=${HELM_VERSION:-v4.3.1}
# CoreDNS, the cluster's DNS (kube-system/kube-dns), built with the plugins kubeadm's Corefile uses.
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
# metrics-server, for `kubectl top` against the reference kubelet and the Satellite nodes.
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.9.0}
# Debian packages the environment needs: runc, sshd, CNI plugins, busybox for test images,
# Debian's containerd 1.6 for the compatibility run, iproute2 for the host's namespace, and an
# image registry on the host (docker-registry, htpasswd from apache2-utils for its users,
# skopeo to push the test images to it), iptables for kube-proxy and the host's firewall.
DEBIAN_PACKAGES="runc openssh-server openssh-client containernetworking-plugins busybox-static containerd iproute2 util-linux procps openssl docker-registry apache2-utils skopeo iptables"
SATELLITE_CACHE=${SATELLITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satellite}
