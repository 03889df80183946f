# streamhost: `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
CARGO ?= cargo
PLUGIN_DIR ?= target/plugins
STREAMHOST_LISTEN ?= 127.0.0.1:8000
export STREAMHOST_PLUGIN_DIR ?= $(PLUGIN_DIR)

.PHONY: help setup plugins models build run test lint fmt-check fmt demo bench-setup accuracy bench bench-video stages load node-costs fuzz clean deploy-check image image-stage image-check image-check-built rollout-test

help:
	@echo "make run    - set up, build plugins and server, serve on $(STREAMHOST_LISTEN) (live view: http://$(STREAMHOST_LISTEN)/)"
	@echo "make test   - set up, then fmt check and every test, built with clippy's lints (make lint: clippy alone)"
	@echo "make demo   - run the seed demo script against a running server (DEMO_PIPELINE=frame_info; yolo_ocr shows the text read)"
	@echo "make models - fetch ONNX Runtime and the models from PyPI wheels (sha256-checked), derive the int8 detector"
	@echo "make accuracy - compare the ocr pipeline with RapidOCR 3.10 on the generated corpus"
	@echo "make bench  - per-stage times, latency and throughput vs RapidOCR; prints the ratios;"
	@echo "              then the video section (make bench-video: ocr vs ocr_stream on rendered clips)"
	@echo "make stages - per-node mean times in-process (STAGES_PIPELINE=ocr), no server: for work on one node"
	@echo "make load   - load and soak scenarios with the load generator (numbers for BENCHMARKS.md)"
	@echo "make node-costs - load/instantiate/call/memory of the same node in Rust, Python and JavaScript (NODE_COSTS_N sessions)"
	@echo "make image  - the container image localhost/streamhost:latest (Dockerfile; podman/buildah or docker; see README)"
	@echo "make image-check - build the image from this checkout's make build and check it as README says"
	@echo "make rollout-test - nginx + 3 servers restarted one by one under Rust and Python clients with --reconnect (part of make test)"
	@echo "make deploy-check - validate deploy/kubernetes/ against the Kubernetes 1.31 schemas (part of make test)"
	@echo "make fuzz   - build the cargo-fuzz targets (fuzz/) and run each for FUZZ_SECONDS (default 60)"

setup:
	@bash scripts/setup.sh

plugins: setup
	bash scripts/build-plugins.sh $(PLUGIN_DIR)

models: setup
	bash scripts/fetch-models.sh models .deps/onnxruntime
	bash scripts/quantize-models.sh models

build: plugins models
	$(CARGO) build --release -p streamhost

run: build
	./target/release/streamhost serve --listen $(STREAMHOST_LISTEN) --pipelines pipelines --plugins $(PLUGIN_DIR)

fmt-check: setup
	$(CARGO) fmt --all -- --check
	cd plugins && $(CARGO) fmt --all -- --check

lint: fmt-check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd plugins && $(CARGO) clippy --workspace --all-targets -- -D warnings

# `make test` lints while it builds: clippy-driver as cargo's workspace rustc wrapper, with the
# arguments `cargo clippy -- -D warnings` would pass it, compiles our own crates with clippy's
# lints on (every target `make lint` checks: `build --all-targets`), and the dependencies once,
# for real. `make lint`'s `cargo clippy` instead type-checks every dependency a second time in
# check mode: 1m37s on CI's 2 cores (build scripts, proc macros and the plugins were already
# shared between the two). The same lints, warnings denied.
# The guest crates keep plain `cargo clippy` (37 s): their cdylibs do not link natively.
CLIPPY_DRIVER := $(shell rustc --print sysroot 2>/dev/null)/bin/clippy-driver
LINTED_BUILD := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

# The guest crates' own unit tests run natively (plugins/ is a workspace of its own), in the
# dev profile: overflow checks on, and a fifth of the build time of their LTO release profile.
# deploy/kubernetes/: the pipelines ConfigMap is current and every file is a valid Kubernetes 1.31
# manifest (strict schemas, kubernetes-validate from PyPI); Kubernetes itself cannot run here.
deploy-check: setup
	bash scripts/validate-deploy.sh

test: fmt-check models deploy-check plugins
	@test -x $(CLIPPY_DRIVER) || { echo "make test: no clippy-driver at $(CLIPPY_DRIVER) (rustup component add clippy)"; exit 1; }
	$(LINTED_BUILD) $(CARGO) build --workspace --all-targets
	$(LINTED_BUILD) $(CARGO) test --workspace
	cd plugins && $(CARGO) clippy --workspace --all-targets -- -D warnings
	cd plugins && $(CARGO) test --workspace
	PLUGIN_DIR=$(PLUGIN_DIR) bash scripts/rollout-test.sh

# A rolling update on real parts (BENCHMARKS.md, "Rolling update"): Debian's nginx in front of
# three debug servers, the Rust and Python clients with --reconnect, each instance restarted in
# turn; fails unless every frame was answered once or abandoned by a close 1001. About a minute.
# `make test` runs the script after its own build of the same binaries.
rollout-test: setup plugins
	$(CARGO) build -p streamhost -p stream-client
	bash scripts/client-venv.sh
	PLUGIN_DIR=$(PLUGIN_DIR) bash scripts/rollout-test.sh

BENCH_ADDR ?= 127.0.0.1:8765
BENCH_PY := bench/.venv/bin/python

bench-setup: setup
	bash bench/setup_venv.sh
	$(BENCH_PY) bench/make_corpus.py bench/corpus

accuracy: build bench-setup
	$(BENCH_PY) bench/rapid_ref.py bench/corpus bench/out/ref_default.json --check-truth
	$(BENCH_PY) bench/rapid_ref.py bench/corpus bench/out/ref_tuned.json --mode tuned --check-truth
	scripts/with-server.sh $(BENCH_ADDR) $(BENCH_PY) bench/compare.py --server $(BENCH_ADDR) \
		--corpus bench/corpus --ref bench/out/ref_tuned.json --ref bench/out/ref_default.json

bench: build bench-setup
	scripts/with-server.sh $(BENCH_ADDR) $(BENCH_PY) bench/report.py --server $(BENCH_ADDR) --corpus bench/corpus
	$(MAKE) bench-video

# The video section: ocr and ocr_stream on the same rendered clips (bench/make_clips.py), in turn
# clip by clip, each frame sent after the previous reply; frames/s, recall, stale words.
VIDEO_ROUNDS ?= 2
bench-video: build bench-setup
	$(BENCH_PY) bench/make_clips.py bench/clips
	scripts/with-server.sh $(BENCH_ADDR) $(BENCH_PY) bench/video_bench.py --server $(BENCH_ADDR) \
		--clips bench/clips --pipelines ocr,ocr_stream --rounds $(VIDEO_ROUNDS) --json bench/out/video.json

# Per-node times in-process (no server, no WebSocket): for iterating on one native node.
STAGES_PIPELINE ?= ocr
stages: build bench-setup
	$(CARGO) run --release -p streamhost --example stage_bench -- $(STAGES_PIPELINE) bench/corpus 5

LOAD_ADDR ?= 127.0.0.1:8766

load: build
	$(CARGO) build --release -p streamhost-load
	scripts/with-server.sh $(LOAD_ADDR) scripts/load-report.sh $(LOAD_ADDR)

# What a Wasm node costs by language (BENCHMARKS.md, "Node costs by language"): builds the
# same-work node three ways (bench/node_costs/), measures in-process, then the server's RSS.
NODE_COSTS_N ?= 100
node-costs: setup
	bash bench/node_costs/run.sh $(NODE_COSTS_N)

FUZZ_SECONDS ?= 60

fuzz: setup plugins
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

DEMO_PIPELINE ?= frame_info

# Its own virtual environment: Debian's python3 refuses `pip install` outside one (PEP 668).
DEMO_VENV := examples/python/.venv
demo: setup
	bash scripts/client-venv.sh $(DEMO_VENV)
	$(DEMO_VENV)/bin/python examples/python/demo.py --host $(STREAMHOST_LISTEN) --pipeline $(DEMO_PIPELINE)

clean:
	$(CARGO) clean
	rm -rf plugins/target plugins/target-debian

# The container image (Dockerfile). BUILD_BASE/RUNTIME_BASE default to Docker Hub's rust and
# debian images; where no registry is reachable, scripts/image-bases.sh makes local ones and
# image-check uses them. ARTIFACTS=host stages this checkout's own build instead of building in
# the image. buildah runs RUN steps with chroot isolation (this machine's container runtime
# cannot set rlimits; see README "Container image").
IMAGE ?= localhost/streamhost:latest
ARTIFACTS ?= built
IMAGE_BUILD_ARGS = --build-arg ARTIFACTS=$(ARTIFACTS) \
	$(if $(BUILD_BASE),--build-arg BUILD_BASE=$(BUILD_BASE)) \
	$(if $(RUNTIME_BASE),--build-arg RUNTIME_BASE=$(RUNTIME_BASE))

image-stage: build
	bash scripts/image-stage.sh .image-stage

image:
	@if command -v buildah >/dev/null; then \
		buildah bud --isolation chroot --layers $(IMAGE_BUILD_ARGS) -t $(IMAGE) . ; \
	else \
		docker build $(IMAGE_BUILD_ARGS) -t $(IMAGE) . ; \
	fi

image-check: image-stage
	bash scripts/image-bases.sh
	$(MAKE) image ARTIFACTS=host RUNTIME_BASE=localhost/streamhost-runtime-base:bookworm BUILD_BASE=localhost/streamhost-runtime-base:bookworm
	bash scripts/image-check.sh $(IMAGE)

# The whole Dockerfile, build stage included (`make build` inside, ~12 min on 2 cores), from
# local bases (the build base carries this machine's Rust toolchain), then the same checks.
image-check-built:
	bash scripts/image-bases.sh --with-build-base
	$(MAKE) image ARTIFACTS=built IMAGE=localhost/streamhost:built \
		BUILD_BASE=localhost/streamhost-build-base:bookworm RUNTIME_BASE=localhost/streamhost-runtime-base:bookworm
	bash scripts/image-check.sh localhost/streamhost:built
