#!/usr/bin/env bash
# Rebuilds Satellite and restarts its two processes in the running local environment
# (containers on the host keep running and are adopted).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stop satellite satellite-compat
exec bash "$HACK/dev-up.sh"
