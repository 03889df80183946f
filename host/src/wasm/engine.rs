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
//! Memory. Every session has its own instance of every Wasm node, so what an
//! instance keeps resident is what a session costs. A component's initial
//! linear memory (data segments, and for componentize-py and componentize-js
//! the pre-initialised CPython or SpiderMonkey heap, 9-12 MiB) becomes one
//! copy-on-write memory image per component, made when it loads (a memfd,
//! since components are compiled from bytes, not mapped from a `.cwasm`):
//! each instance maps the image privately and pays only for the pages it
//! writes, while pages it only reads are shared by all. `make node-costs`
//! measured (BENCHMARKS.md, "Node costs by language") about 30 KiB private
//! per live Rust instance and 0.5-0.75 MiB per SpiderMonkey or CPython one;
//! without copy-on-write they copied 3.1 and 11.4 MiB each. The rest of a
//! session's Wasm memory is data: a frame lowered into a guest stays in its
//! linear memory (freed by the guest, but a Wasm memory never shrinks), so a
//! 640x480 RGB frame adds 900 KiB to every session it passed through. Note
//! that `VmRSS` counts an image page once per instance that read it; `Pss`
//! and a cgroup's memory count it once.
//!
//! Allocation. By default instances use wasmtime's on-demand allocator: each
//! memory is an `mmap` of 4 GiB of address space plus guard (no bounds
//! checks in compiled code), with the image mapped over it, made when a
//! session's first frame instantiates its nodes and unmapped when the session
//! ends. `STREAMHOST_WASM_POOL_INSTANCES=N` switches to the pooling allocator
//! ([`InstanceAllocation::Pooling`]): slots for N node instances at once (a
//! session of a pipeline with k Wasm nodes takes k), reserved up front, each
//! memory slot the same 4 GiB plus guard, so N = 1024 reserves about 8 TiB
//! of the 128 TiB a process may address; an instance beyond N fails its frame
//! (`could not be instantiated`) until a slot frees. A freed slot is reset
//! with `madvise` and stays warm with its image mapped, so the next session
//! skips the `mmap` work (measured: a Rust node's start 14 us against 22, no
//! gain for Python or JavaScript, whose start is their runtime's own work); a
//! live instance costs the same pages either way (both allocators map the
//! same image copy-on-write). Hence off by default. The sandbox is the
//! same under both: the [`ResourceLimiter`](wasmtime::ResourceLimiter) in
//! `store.rs` still caps each instance's memories, counts and tables, and the
//! pool's per-component maxima are set from the same limits, never lower.
//! Memory protection keys (denser slots) need a CPU with `pku`; the machines
//! measured have none, so they are left off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config as WasmConfig, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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
    /// The server's sandbox limits as its settings declare them.
    pub fn from_config(c: &crate::config::Config) -> Self {
        SandboxLimits {
            call_timeout: c.wasm_call_timeout,
            memory_bytes: c.wasm_memory_bytes,
            epoch_tick: c.wasm_epoch_tick,
            max_stack_bytes: c.wasm_max_stack_bytes,
            max_instances: c.wasm_max_instances,
            max_table_elements: c.wasm_max_table_elements,
            log_lines_per_sec: c.plugin_log_lines_per_sec,
        }
    }

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

/// How node instances' memories, tables and instance state are allocated
/// (see the module documentation for the trade-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAllocation {
    /// Mapped per instance when it starts, unmapped when it ends.
    OnDemand,
    /// wasmtime's pooling allocator, with slots for this many node instances
    /// alive at once.
    Pooling { instances: u32 },
}

impl InstanceAllocation {
    /// `STREAMHOST_WASM_POOL_INSTANCES`: 0 is on demand.
    pub fn from_pool_instances(instances: usize) -> Self {
        match u32::try_from(instances) {
            Ok(0) => InstanceAllocation::OnDemand,
            Ok(n) => InstanceAllocation::Pooling { instances: n },
            Err(_) => InstanceAllocation::Pooling {
                instances: u32::MAX,
            },
        }
    }
}

/// Memories each pooled node instance may have on average: one for every
/// toolchain we ship or measured (Rust, componentize-py, componentize-js);
/// a second covers a few components that bring their own.
const POOLED_MEMORIES_PER_INSTANCE: u32 = 2;

/// The pool, sized from the sandbox's limits so it refuses nothing the
/// limiter would allow to one instance; only the totals can run out.
fn pooling_config(limits: &SandboxLimits, instances: u32) -> PoolingAllocationConfig {
    let per = u32::try_from(limits.max_instances).unwrap_or(u32::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(per))
        .total_memories(instances.saturating_mul(POOLED_MEMORIES_PER_INSTANCE))
        .total_tables(instances.saturating_mul(per))
        .max_core_instances_per_component(per)
        .max_memories_per_component(per)
        .max_tables_per_component(per)
        .max_memories_per_module(per)
        .max_tables_per_module(per)
        .max_memory_size(limits.memory_bytes)
        .table_elements(limits.max_table_elements);
    pool
}

/// One per server.
pub struct WasmEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<NodeStore>,
    pub(crate) limits: SandboxLimits,
    /// Where compiled components are kept across starts (see [`super::compiled`]).
    pub(crate) compile_cache: Option<std::path::PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl WasmEngine {
    /// An engine whose instances are allocated on demand.
    pub fn new(limits: SandboxLimits) -> anyhow::Result<Self> {
        Self::with_allocation(limits, InstanceAllocation::OnDemand)
    }

    pub fn with_allocation(
        limits: SandboxLimits,
        allocation: InstanceAllocation,
    ) -> anyhow::Result<Self> {
        let mut config = WasmConfig::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.max_stack_bytes);
        config.parallel_compilation(true);
        // The default on Linux, stated because a session's cost depends on it.
        config.memory_init_cow(true);
        if let InstanceAllocation::Pooling { instances } = allocation {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
                &limits, instances,
            )));
        }
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
            compile_cache: None,
            ticker_stop,
        })
    }

    /// Keeps compiled components in `dir` across starts (`STREAMHOST_COMPILE_CACHE_DIR`).
    pub fn with_compile_cache(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.compile_cache = dir;
        self
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
