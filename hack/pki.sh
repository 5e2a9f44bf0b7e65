# Certificates of the local environment, made with openssl. Sourced by dev-up.sh.
# shellcheck shell=bash
pki_cert() { # name cn org san-csv ca-name usage(server|client|both)
  local name=$1 cn=$2 org=$3 san=$4 ca=$5 usage=$6 d=$DEV/pki
  [ -f "$d/$name.crt" ] && return 0
  local subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org$subj"
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment"
  case $usage in
    server) ext="$ext
extendedKeyUsage=serverAuth" ;;
    client) ext="$ext
extendedKeyUsage=clientAuth" ;;
    both) ext="$ext
extendedKeyUsage=serverAuth,clientAuth" ;;
  esac
  [ -n "$san" ] && ext="$ext
subjectAltName=$san"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null
  openssl req -new -key "$d/$name.key" -subj "$subj" -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial \
    -days 30 -extfile <(printf '%s\n' "$ext") -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr"
  chmod 600 "$d/$name.key"
}

pki_ca() { # name cn
  local d=$DEV/pki
  [ -f "$d/$1.crt" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$d/$1.key" -subj "/CN=$2" -days 30 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$d/$1.crt" 2>/dev/null
  chmod 600 "$d/$1.key"
}

kubeconfig() { # file user cert key
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: satellite-dev
  cluster:
    server: https://$CP_IP:6443
    certificate-authority: $DEV/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $3
    client-key: $4
contexts:
- name: satellite-dev
  context: {cluster: satellite-dev, user: $2}
current-context: satellite-dev
KC
  chmod 600 "$1"
}

make_pki() {
  mkdir -p "$DEV/pki" && chmod 700 "$DEV/pki"
  local d=$DEV/pki
  pki_ca ca satellite-dev-ca
  pki_cert apiserver kube-apiserver "" "IP:$CP_IP,IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:localhost" ca server
  pki_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" ca client
  pki_cert admin admin system:masters "" ca client
  pki_cert satellite satellite "" "" ca client
  pki_cert reference-kubelet "system:node:$REF_NODE" system:nodes "" ca client
  pki_cert reference-serving "$REF_NODE" "" "IP:$CP_IP,DNS:$REF_NODE" ca server
  pki_cert compat-serving "$COMPAT_NODE" "" "IP:$COMPAT_IP,DNS:$COMPAT_NODE" ca server
  pki_cert registry registry "" "IP:$HOST_IP" ca server
  # The aggregation layer: the apiserver's front-proxy client under a CA of its own (as kubeadm
  # makes it), metrics-server's serving certificate for the name the aggregator checks, and
  # its client identity (to the API and to the kubelets).
  pki_ca front-proxy-ca satellite-dev-front-proxy-ca
  pki_cert front-proxy-client front-proxy-client "" "" front-proxy-ca client
  pki_cert metrics-server-serving metrics-server "" "DNS:metrics-server.kube-system.svc,IP:$CP_IP" ca server
  pki_cert metrics-server system:metrics-server "" "" ca client
  # kube-proxy's identity: the cluster role binding system:node-proxier grants it.
  pki_cert kube-proxy system:kube-proxy "" "" ca client
  [ -f "$d/sa.key" ] || { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null; chmod 600 "$d/sa.key"; }
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  kubeconfig "$DEV/admin.kubeconfig" admin "$d/admin.crt" "$d/admin.key"
  kubeconfig "$DEV/satellite.kubeconfig" satellite "$d/satellite.crt" "$d/satellite.key"
  kubeconfig "$DEV/metrics-server.kubeconfig" system:metrics-server "$d/metrics-server.crt" "$d/metrics-server.key"
  kubeconfig "$DEV/kube-proxy.kubeconfig" system:kube-proxy "$d/kube-proxy.crt" "$d/kube-proxy.key"
  kubeconfig "$DEV/reference-kubelet.kubeconfig" "system:node:$REF_NODE" "$d/reference-kubelet.crt" "$d/reference-kubelet.key"
}
