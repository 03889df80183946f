//! What a node's wasmtime `Store` carries, apart from the instance that
//! drives it: the memory and count limiter, the log budget, and the host side
//! of the WIT `host-api` (guest logging).
//!
//! The store's data type is named by the engine's `Linker`, a component's
//! `InstancePre` and every instance, so it gets a module of its own (as
//! Spin's `core/src/store.rs`) instead of living inside `instance.rs`, which
//! the engine and component modules would otherwise import from. The limits
//! it enforces are the sandbox's ([`super::engine::SandboxLimits`]) and the
//! node's own memory allowance; the instance reads back here whether a trap
//! was the memory cap and how many log lines were swallowed. It also carries
//! the instance's capability-less WASI context ([`super::wasi`]), whose
//! stdout and stderr share the `log` import's budget.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{v1, v2};
use super::engine::SandboxLimits;
use super::wasi::{self, LineLog};
use crate::backpressure::FrameRate;

/// Longest guest log line kept; the rest is cut.
pub const MAX_LOG_LINE: usize = 1024;

/// Who a guest's log lines belong to.
#[derive(Debug, Clone, Default)]
pub struct LogContext {
    pub session_id: String,
    pub pipeline_id: String,
    pub node_id: String,
}

/// Caps the sum of all linear memories of one instance, and its counts of
/// instances, memories and tables.
pub(super) struct InstanceLimiter {
    pub(super) cap: usize,
    used: usize,
    pub(super) hit: bool,
    max_instances: usize,
    max_table_elements: usize,
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.used.saturating_sub(current).saturating_add(desired);
        if next > self.cap {
            self.hit = true;
            return Ok(false);
        }
        self.used = next;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn memories(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        self.max_instances
    }
}

/// Log lines an instance may still emit: the frame quota's token bucket
/// (refilled at `rate` a second, up to `rate`), plus a count of what it swallowed.
pub(crate) struct LogBudget {
    bucket: FrameRate,
    pub(crate) suppressed: u32,
}

impl LogBudget {
    pub(crate) fn new(rate: u32) -> Self {
        LogBudget {
            bucket: FrameRate::new(f64::from(rate)),
            suppressed: 0,
        }
    }

    pub(crate) fn take_at(&mut self, now: Instant) -> bool {
        let taken = self.bucket.admit(now);
        if !taken {
            self.suppressed = self.suppressed.saturating_add(1);
        }
        taken
    }
}

/// The data a node's `Store` carries.
pub struct NodeStore {
    pub(super) limiter: InstanceLimiter,
    pub(super) log: LogContext,
    /// Shared with the WASI stdout and stderr streams.
    pub(super) log_budget: Arc<Mutex<LogBudget>>,
    /// In a `Mutex` only so the store stays `Sync` (`WasiCtx` and
    /// `ResourceTable` are not, and a session is held across awaits); only
    /// ever reached through `&mut` (`get_mut`), so never locked.
    wasi: Mutex<WasiState>,
    pub(super) stdout: LineLog,
    pub(super) stderr: LineLog,
}

struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl NodeStore {
    /// A fresh store's data: `memory_bytes` of linear memory in all, the
    /// sandbox's counts and log rate, whose log lines these are, and a WASI
    /// context that grants nothing.
    pub(super) fn new(memory_bytes: usize, sandbox: &SandboxLimits, log: LogContext) -> Self {
        let log_budget = Arc::new(Mutex::new(LogBudget::new(sandbox.log_lines_per_sec)));
        let stdout = LineLog::new("stdout", log.clone(), log_budget.clone());
        let stderr = LineLog::new("stderr", log.clone(), log_budget.clone());
        NodeStore {
            limiter: InstanceLimiter {
                cap: memory_bytes,
                used: 0,
                hit: false,
                max_instances: sandbox.max_instances,
                max_table_elements: sandbox.max_table_elements,
            },
            log,
            log_budget,
            wasi: Mutex::new(WasiState {
                ctx: wasi::capability_less(stdout.clone(), stderr.clone()),
                table: wasi::resource_table(),
            }),
            stdout,
            stderr,
        }
    }
}

impl WasiView for NodeStore {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi.get_mut().unwrap_or_else(PoisonError::into_inner);
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

/// Cuts a guest log line at [`MAX_LOG_LINE`] bytes, on a character boundary.
pub(crate) fn cut_log_line(mut message: String) -> String {
    if message.len() > MAX_LOG_LINE {
        let mut cut = MAX_LOG_LINE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message
}

impl v1::wit::Host for NodeStore {}
impl v2::wit::Host for NodeStore {}

impl v1::host_api::Host for NodeStore {
    fn log(&mut self, level: v1::host_api::LogLevel, message: String) {
        use v1::host_api::LogLevel as V1;
        use v2::host_api::LogLevel as L;
        let level = match level {
            V1::Trace => L::Trace,
            V1::Debug => L::Debug,
            V1::Info => L::Info,
            V1::Warn => L::Warn,
            V1::Error => L::Error,
        };
        self.plugin_log(level, message);
    }
}

impl v2::host_api::Host for NodeStore {
    fn log(&mut self, level: v2::host_api::LogLevel, message: String) {
        self.plugin_log(level, message);
    }
}

impl NodeStore {
    /// The `log` import of either WIT version: budgeted, cut, tagged.
    fn plugin_log(&mut self, level: v2::host_api::LogLevel, message: String) {
        use v2::host_api::LogLevel as L;
        let taken = self
            .log_budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take_at(Instant::now());
        if !taken {
            return;
        }
        let message = cut_log_line(message);
        let LogContext {
            session_id,
            pipeline_id,
            node_id,
        } = &self.log;
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "plugin", session_id = %session_id, pipeline_id = %pipeline_id, node_id = %node_id, "{message}")
            };
        }
        match level {
            L::Trace => emit!(trace),
            L::Debug => emit!(debug),
            L::Info => emit!(info),
            L::Warn => emit!(warn),
            L::Error => emit!(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_memory_cap_adds_up_every_memory_of_an_instance() {
        let mut cap = InstanceLimiter {
            cap: 64 << 20,
            used: 0,
            hit: false,
            max_instances: 4,
            max_table_elements: 10,
        };
        assert_eq!(cap.table_growing(0, 11, None).ok(), Some(false));
        // First memory created at 40 MiB, then grown to 48 MiB.
        assert_eq!(cap.memory_growing(0, 40 << 20, None).ok(), Some(true));
        assert_eq!(
            cap.memory_growing(40 << 20, 48 << 20, None).ok(),
            Some(true)
        );
        // A second memory cannot take the instance past the cap, though it alone would fit.
        assert_eq!(cap.memory_growing(0, 20 << 20, None).ok(), Some(false));
        assert!(cap.hit);
        assert_eq!(cap.memory_growing(0, 16 << 20, None).ok(), Some(true));
        assert_eq!(cap.used, 64 << 20);
    }

    #[test]
    fn the_log_budget_refills_over_time_and_counts_what_it_swallows() {
        let mut b = LogBudget::new(3);
        let t0 = Instant::now();
        assert!(b.take_at(t0) && b.take_at(t0) && b.take_at(t0));
        assert!(!b.take_at(t0));
        assert_eq!(b.suppressed, 1);
        let later = t0 + Duration::from_millis(700);
        assert!(b.take_at(later) && b.take_at(later));
        assert!(!b.take_at(later));
    }
}
