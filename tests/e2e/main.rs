//! End-to-end tests against a real server on an ephemeral port with real
//! WebSocket clients and Wasm components built from source. One binary (see
//! Cargo.toml); modules follow the seed's test-first sequence: connect,
//! session lifecycle, receiving frames, validation, pipeline integration,
//! backpressure drop, slow-down, the error contract, logging and metrics,
//! plus the sandbox, manifests, hot reload and shutdown, and the browser live view (HTTP
//! checks in `web`, HTTPS/WSS in `tls`, a real headless Chromium in `browser`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backpressure;
mod browser;
mod clients;
mod compile_cache;
mod connect;
mod deadline;
mod errors;
mod frames;
mod js_node;
mod kinds;
mod malformed;
mod manifests;
mod observability;

mod ocr;
mod pipelines;
mod prometheus;
mod python_client;
mod python_node;
mod reload;
mod sandbox;
mod shutdown;
mod tenancy;
mod tls;
mod video;
mod web;
