#!/usr/bin/env bash
# Installs the Debian packages the local environment needs ($DEBIAN_PACKAGES, hack/versions.sh)
# without starting their daemons. Debian's packages start theirs (containerd, docker-registry)
# where an init system runs; the environment runs its own. A policy-rc.d that exits 101
# ("action forbidden") tells invoke-rc.d and deb-systemd-invoke not to start them, so nothing
# needs stopping afterwards (/usr/share/doc/init-system-helpers/README.policy-rc.d). One that
# exists already is the machine's own and stays as it is.
set -euo pipefail
. "$(dirname "$0")/versions.sh"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [ ! -e $policy ]; then
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  printf '#!/bin/sh\nexit 101\n' >$policy
  chmod 755 $policy
fi
apt-get update -qq >/dev/null
# shellcheck disable=SC2086 # a list of package names
apt-get install -y -qq --no-install-recommends $DEBIAN_PACKAGES >/dev/null
