# oci_archive ROOTFS OUT NAME CONFIG: packs the directory ROOTFS as the single layer of an OCI
# image archive (oci-layout, index.json, blobs) at OUT, with CONFIG as the image config's
# "config" object (JSON). The archive carries io.containerd.image.name, so `ctr images import`
# names it NAME. Reproducible: sorted, zero mtimes, root-owned.
# shellcheck shell=bash
oci_archive() {
  local root=$1 out=$2 name=$3 config=$4 work
  work=$(mktemp -d)
  mkdir -p "$work/blobs/sha256"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/layer.tar" .
  _oci_put() { # file mediatype -> prints descriptor; moves file into blobs
    local d s; d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1")
    mv "$1" "$work/blobs/sha256/$d"
    printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$s"
  }
  local diffid layer cfg manifest
  diffid=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  layer=$(_oci_put "$work/layer.tar" application/vnd.oci.image.layer.v1.tar)
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"satellite hack/oci.sh"}]}' \
    "$config" "$diffid" >"$work/config.json"
  cfg=$(_oci_put "$work/config.json" application/vnd.oci.image.config.v1+json)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' "$cfg" "$layer" >"$work/manifest.json"
  manifest=$(_oci_put "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)
  manifest=${manifest%\}}
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$name" "${name##*:}" >"$work/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
  mkdir -p "$(dirname "$out")"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  rm -rf "$work"
}
