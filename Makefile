# Satellite. `make dev` runs it end to end locally; `make test` runs every test.
SHELL := /bin/bash
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
IMAGE ?= satellite:$(VERSION)

.PHONY: all bench build test test-unit test-e2e dev dev-restart dev-down deps image image-oci lint clean

all: build

build: ## the satellite binary, static, and its subPath helpers for the hosts, in _output/bin
	LDFLAGS="-s -w" VERSION=$(VERSION) bash hack/build.sh

deps: ## build and cache the pinned Kubernetes, etcd and containerd binaries
	bash hack/build-deps.sh

dev: ## bring up the local environment (control plane, remote host, reference node, Satellite)
	bash hack/dev-up.sh

dev-restart: ## rebuild Satellite and restart it in the running local environment
	bash hack/dev-restart.sh

dev-down: ## stop the local environment and remove its state
	bash hack/dev-down.sh

test: ## every test: unit (with -race), then end-to-end against the local environment
	bash hack/test.sh

test-unit: ## unit tests only
	go test -race -short -count=1 ./...

test-e2e: ## end-to-end tests only (brings the local environment up when needed)
	bash hack/test.sh e2e

bench: ## streams benchmark, Satellite beside the reference kubelet (needs make dev)
	bash hack/dev-up.sh
	go run ./test/bench

lint:
	go vet ./...
	test -z "$$(gofmt -l . | tee /dev/stderr)"

image: ## container image with a Docker engine
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

image-oci: build ## the same image without Docker, as an OCI archive in _output/images (ctr images import)
	bash hack/image-oci.sh _output/images/satellite.tar localhost/satellite/satellite:$(VERSION)

clean:
	rm -rf _output
