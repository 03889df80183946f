//! WebAssembly component nodes: the sandbox pipeline authors' code runs in.
//!
//! Split by lifetime: [`engine`] lives as long as the server (one wasmtime
//! `Engine`, its epoch ticker, the `Linker`); [`component`] is a node's code,
//! compiled and type-checked once when its pipeline loads; [`instance`] is
//! one session's live copy of a node, with its own memory cap and time limit,
//! thrown away after any trap, and [`store`] the data its wasmtime `Store`
//! carries (limiter, log budget, the host side of the WIT, the WASI context).
//! [`bindings`] is the only place `bindgen!` runs and [`convert`] the only
//! place host values meet WIT values; [`wasi`] is the capability-less WASI
//! 0.2 every instance gets.

pub mod bindings;
pub mod compiled;
pub mod component;
pub mod convert;
pub mod engine;
pub mod instance;
pub mod store;
pub mod wasi;

pub use component::{NodeComponent, WasmLoadError, WitVersion};
pub use engine::{InstanceAllocation, InstanceLimits, SandboxLimits, WasmEngine};
pub use instance::{FrameContext, NodeInstance, WasmCallError};
