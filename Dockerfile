# Satellite's container image: a static binary on an empty base, running as a non-root user.
# make image (needs a Docker engine). The local environment builds no image with Docker.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/satellite ./cmd/satellite
# The helpers Satellite copies to hosts for subPath mounts, for either architecture of host.
RUN for arch in amd64 arm64; do CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "-s -w" -o /out/satellite-subpath-linux-$arch ./cmd/satellite-subpath; done

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/satellite /satellite
COPY --from=build /out/satellite-subpath-linux-amd64 /out/satellite-subpath-linux-arm64 /
USER 65532:65532
ENTRYPOINT ["/satellite"]
