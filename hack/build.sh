#!/usr/bin/env bash
# Builds satellite, static, and the satellite-subpath helpers it copies to hosts (linux on
# amd64 and arm64, the host's architecture being Satellite's to find) into _output/bin.
# LDFLAGS adds to satellite's linker flags; VERSION is its version (default: git describe).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
CGO_ENABLED=0 go build -trimpath -ldflags "${LDFLAGS:-} -X main.version=$version" -o _output/bin/satellite ./cmd/satellite
for arch in amd64 arm64; do
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "-s -w" -o "_output/bin/satellite-subpath-linux-$arch" ./cmd/satellite-subpath
done
