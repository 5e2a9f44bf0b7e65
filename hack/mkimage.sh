#!/usr/bin/env bash
# Builds an OCI image archive with busybox-static as its only program, for the local
# environment, where no image can be pulled. EXTRA_BIN, when set, is one more program, put in
# /bin under its own name.
#   [EXTRA_BIN=path] mkimage.sh OUT.tar NAME:TAG [ENTRYPOINT-JSON [CMD-JSON]]
set -euo pipefail
out=$1 name=$2 entrypoint=${3:-'["/bin/sh"]'} cmd=${4:-'[]'}
. "$(dirname "$0")/oci.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/bin "$root"/etc "$root"/tmp "$root"/root "$root"/var/log "$root"/proc "$root"/sys "$root"/dev
chmod 1777 "$root/tmp"
cp /usr/bin/busybox "$root/bin/busybox"
for applet in $(/usr/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
if [ -n "${EXTRA_BIN:-}" ]; then cp "$EXTRA_BIN" "$root/bin/"; fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
oci_archive "$root" "$out" "$name" \
  "$(printf '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/"}' "$entrypoint" "$cmd")"
