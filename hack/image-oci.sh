#!/usr/bin/env bash
# Builds Satellite's container image without Docker, as an OCI archive: the same image the
# Dockerfile makes (the static binary at /satellite, the subPath helpers beside it, CA certificates, user 65532, nothing else).
#   image-oci.sh OUT.tar NAME:TAG   (make image-oci; the binary comes from make build)
set -euo pipefail
out=$1 name=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/oci.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$here/../_output/bin/satellite" "$root/satellite"
cp "$here"/../_output/bin/satellite-subpath-linux-* "$root/" # copied to hosts for subPath mounts
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
printf 'nonroot:x:65532:\n' >"$root/etc/group"
oci_archive "$root" "$out" "$name" '{"User":"65532:65532","Entrypoint":["/satellite"],"WorkingDir":"/"}'
echo "$out ($name)"
