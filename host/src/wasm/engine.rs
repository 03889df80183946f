//! The server-wide wasmtime engine: compilation settings, the epoch ticker
//! that enforces per-call time limits, and the linker every node is
//! instantiated against.
//!
//! Time limits use epoch interruption (a counter bumped by one OS thread every
//! tick), which costs a load and compare at loop heads instead of fuel's
//! per-instruction accounting. The ticker is a plain thread, not a tokio task,
//! so a busy runtime cannot delay it; it stops when the engine is dropped.
//!
//! The linker carries our `host` interface (both WIT versions: 0.1.0 and
//! 0.2.0 are distinct packages to it) and WASI 0.2 (the synchronous
//! `wasmtime_wasi::p2` bindings), which each instance backs with a context
//! that grants nothing (see `wasi.rs`): toolchains that always import WASI
//! (`wasm32-wasip2`, componentize-py, componentize-js) load, and their calls
//! get WASI's errors. A component importing anything else (another package,
//! WASI 0.3, `wasi:http`) is refused when its pipeline loads, naming the
//! import (see `component.rs`).
//!
//! Instances use wasmtime's on-demand allocator rather than the pooling one:
//! instances here live for a whole WebSocket session rather than one request,
//! so instantiation is rare and the pool's up-front address-space reservation
//! (sized for the connection limit times every node) would buy little.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config as WasmConfig, Engine};

use super::bindings::{v1, v2};
use super::store::NodeStore;

/// Limits applied to every node instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SandboxLimits {
    pub call_timeout: Duration,
    pub memory_bytes: usize,
    pub epoch_tick: Duration,
    pub max_stack_bytes: usize,
    /// Most core instances, memories and tables (each) one node instance may create.
    pub max_instances: usize,
    pub max_table_elements: usize,
    pub log_lines_per_sec: u32,
}

impl SandboxLimits {
    /// A call timeout in epoch ticks, rounded up, at least one.
    pub fn deadline_ticks(&self, call_timeout: Duration) -> u64 {
        let tick = self.epoch_tick.as_micros().max(1);
        (call_timeout.as_micros().div_ceil(tick) as u64).max(1)
    }

    /// The server-wide per-instance limits (what a node gets unless its
    /// manifest asks for less and its tenant allows it).
    pub fn instance_limits(&self) -> InstanceLimits {
        InstanceLimits {
            memory_bytes: self.memory_bytes,
            call_timeout: self.call_timeout,
        }
    }
}

/// The limits one node instance runs under: what its manifest asked for, or
/// else the ceiling (the server's limits, or the tenant's quota); a node that
/// asks for more than the ceiling is refused (`NodeAsks::within`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    pub memory_bytes: usize,
    pub call_timeout: Duration,
}

/// One per server.
pub struct WasmEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<NodeStore>,
    pub(crate) limits: SandboxLimits,
    ticker_stop: Arc<AtomicBool>,
}

impl WasmEngine {
    pub fn new(limits: SandboxLimits) -> anyhow::Result<Self> {
        let mut config = WasmConfig::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.max_stack_bytes);
        config.parallel_compilation(true);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::<NodeStore>::new(&engine);
        v1::NodeWorld::add_to_linker::<NodeStore, HasSelf<NodeStore>>(&mut linker, |s| s)?;
        v2::NodeWorld::add_to_linker::<NodeStore, HasSelf<NodeStore>>(&mut linker, |s| s)?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(limits.epoch_tick);
                    ticking.increment_epoch();
                }
            })?;
        Ok(WasmEngine {
            engine,
            linker,
            limits,
            ticker_stop,
        })
    }

    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        let l = SandboxLimits {
            call_timeout: Duration::from_millis(12),
            memory_bytes: 1,
            epoch_tick: Duration::from_millis(5),
            max_stack_bytes: 1,
            max_instances: 1,
            max_table_elements: 1,
            log_lines_per_sec: 1,
        };
        assert_eq!(l.deadline_ticks(Duration::from_millis(12)), 3);
        assert_eq!(l.deadline_ticks(Duration::from_micros(1)), 1);
    }
}
