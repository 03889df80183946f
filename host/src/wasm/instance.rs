//! One session's live instance of a node: its own `Store`, memory cap, time
//! limit and log budget.
//!
//! Every call sets a fresh epoch deadline, so a guest that loops is trapped
//! after the configured time. The memory cap is a `ResourceLimiter` that adds
//! up every linear memory the instance creates or grows, so a guest with
//! several memories cannot multiply its allowance; the same limiter bounds how
//! many core instances, memories and tables it may create and how far a table
//! may grow. What the host copies out of a guest (log lines, outputs) can be
//! no larger than the guest's capped memory, and log lines are cut to
//! [`MAX_LOG_LINE`] and rate-limited per instance by a token bucket. Any trap poisons the
//! instance: the caller must drop it and instantiate anew (wasmtime does not
//! support re-entering an instance that trapped), which is why the errors say
//! whether the instance survived ([`WasmCallError::instance_lost`]).
//!
//! The store also carries a capability-less WASI context (`wasi.rs`) whose
//! stdout and stderr share the `log` import's budget.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host_api, wit, NodeWorld};
use super::component::NodeComponent;
use super::convert;
use super::engine::{InstanceLimits, WasmEngine};
use super::wasi::{self, LineLog};
use crate::backpressure::FrameRate;
use crate::value::Value;

/// Longest guest log line kept; the rest is cut.
pub const MAX_LOG_LINE: usize = 1024;

/// Why a call into a node failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WasmCallError {
    #[error("exceeded its {0:?} time limit")]
    Timeout(Duration),
    #[error("exceeded its {} MiB memory cap", .0 >> 20)]
    MemoryCap(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("rejected its config: {0}")]
    InvalidConfig(String),
    #[error("rejected its input: {0}")]
    InvalidInput(String),
    #[error("failed: {0}")]
    Failed(String),
    #[error("returned an unusable value: {0}")]
    BadOutput(String),
}

impl WasmCallError {
    /// True when the instance must be discarded (it trapped or never started).
    pub fn instance_lost(&self) -> bool {
        matches!(
            self,
            WasmCallError::Timeout(_)
                | WasmCallError::MemoryCap(_)
                | WasmCallError::Trap(_)
                | WasmCallError::Instantiate(_)
        )
    }
}

/// Who a guest's log lines belong to.
#[derive(Debug, Clone, Default)]
pub struct LogContext {
    pub session_id: String,
    pub pipeline_id: String,
    pub node_id: String,
}

/// Caps the sum of all linear memories of one instance, and its counts of
/// instances, memories and tables.
struct InstanceLimiter {
    cap: usize,
    used: usize,
    hit: bool,
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
    suppressed: u32,
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
    limiter: InstanceLimiter,
    log: LogContext,
    /// Shared with the WASI stdout and stderr streams.
    log_budget: Arc<Mutex<LogBudget>>,
    /// In a `Mutex` only so the store stays `Sync` (`WasiCtx` and
    /// `ResourceTable` are not, and a session is held across awaits); only
    /// ever reached through `&mut` (`get_mut`), so never locked.
    wasi: Mutex<WasiState>,
    stdout: LineLog,
    stderr: LineLog,
}

struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
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

impl wit::Host for NodeStore {}

impl host_api::Host for NodeStore {
    fn log(&mut self, level: host_api::LogLevel, message: String) {
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
            host_api::LogLevel::Trace => emit!(trace),
            host_api::LogLevel::Debug => emit!(debug),
            host_api::LogLevel::Info => emit!(info),
            host_api::LogLevel::Warn => emit!(warn),
            host_api::LogLevel::Error => emit!(error),
        }
    }
}

/// A live node instance belonging to one session.
pub struct NodeInstance {
    store: Store<NodeStore>,
    bindings: NodeWorld,
    call_timeout: Duration,
    deadline_ticks: u64,
}

impl NodeInstance {
    /// Instantiates `component` under `limits` and hands it its config (JSON text).
    pub fn start(
        engine: &WasmEngine,
        component: &NodeComponent,
        config_json: &str,
        limits: InstanceLimits,
        log: LogContext,
    ) -> Result<Self, WasmCallError> {
        let sandbox = engine.limits();
        let log_budget = Arc::new(Mutex::new(LogBudget::new(sandbox.log_lines_per_sec)));
        let stdout = LineLog::new("stdout", log.clone(), log_budget.clone());
        let stderr = LineLog::new("stderr", log.clone(), log_budget.clone());
        let data = NodeStore {
            limiter: InstanceLimiter {
                cap: limits.memory_bytes,
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
        };
        let mut store = Store::new(&engine.engine, data);
        store.limiter(|s| &mut s.limiter);
        let deadline_ticks = sandbox.deadline_ticks(limits.call_timeout);
        store.set_epoch_deadline(deadline_ticks);
        store.epoch_deadline_trap();
        let bindings = component
            .pre
            .instantiate(&mut store)
            .map_err(|e| WasmCallError::Instantiate(format!("{e:#}")))?;
        let mut instance = NodeInstance {
            store,
            bindings,
            call_timeout: limits.call_timeout,
            deadline_ticks,
        };
        instance.init(config_json)?;
        Ok(instance)
    }

    fn init(&mut self, config_json: &str) -> Result<(), WasmCallError> {
        self.before_call();
        let (bindings, store) = (&self.bindings, &mut self.store);
        let call = move || {
            bindings
                .streamhost_node_node()
                .call_init(store, config_json)
        };
        // WASI's synchronous bindings `block_on` the current tokio runtime,
        // which panics on a runtime thread; the load check instantiates on
        // one. So off a plain thread, unless no runtime is current (frames
        // run on blocking or plain threads, where this is fine).
        let outcome = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| scope.spawn(call).join())
                .unwrap_or_else(|_| Err(wasmtime::Error::msg("the init call panicked")))
        } else {
            call()
        };
        self.after_call();
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(node_error(e)),
            Err(e) => Err(self.classify_trap(e)),
        }
    }

    /// Runs the node on one frame's inputs.
    pub fn process(&mut self, inputs: &[(String, Value)]) -> Result<Value, WasmCallError> {
        self.before_call();
        let (bindings, store) = (&self.bindings, &mut self.store);
        let outcome = convert::with_wit_inputs(inputs, |args| {
            bindings
                .streamhost_node_node()
                .call_process(&mut *store, args)
        })
        .map_err(WasmCallError::InvalidInput)?;
        self.after_call();
        match outcome {
            Ok(Ok(value)) => convert::from_wit_value(value).map_err(WasmCallError::BadOutput),
            Ok(Err(e)) => Err(node_error(e)),
            Err(e) => Err(self.classify_trap(e)),
        }
    }

    fn before_call(&mut self) {
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store.data_mut().limiter.hit = false;
    }

    /// Logs what is left of unterminated stdout/stderr lines, then reports
    /// lines the log budget swallowed, at most once per call.
    fn after_call(&mut self) {
        let data = self.store.data_mut();
        data.stdout.flush_partial();
        data.stderr.flush_partial();
        let suppressed = std::mem::take(
            &mut data
                .log_budget
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .suppressed,
        );
        if suppressed > 0 {
            let LogContext {
                session_id,
                pipeline_id,
                node_id,
            } = &data.log;
            tracing::warn!(target: "plugin", session_id = %session_id, pipeline_id = %pipeline_id, node_id = %node_id,
                suppressed, "plugin log lines over the rate limit were dropped");
        }
    }

    fn classify_trap(&self, e: wasmtime::Error) -> WasmCallError {
        if self.store.data().limiter.hit {
            return WasmCallError::MemoryCap(self.store.data().limiter.cap);
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => WasmCallError::Timeout(self.call_timeout),
            Some(trap) => WasmCallError::Trap(trap.to_string()),
            None => WasmCallError::Trap(format!("{e:#}")),
        }
    }
}

fn node_error(e: wit::NodeError) -> WasmCallError {
    match e {
        wit::NodeError::InvalidConfig(m) => WasmCallError::InvalidConfig(m),
        wit::NodeError::InvalidInput(m) => WasmCallError::InvalidInput(m),
        wit::NodeError::Failed(m) => WasmCallError::Failed(m),
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn errors_say_when_the_instance_is_lost() {
        assert!(WasmCallError::Timeout(Duration::from_secs(1)).instance_lost());
        assert!(WasmCallError::MemoryCap(1).instance_lost());
        assert!(WasmCallError::Trap("x".into()).instance_lost());
        assert!(!WasmCallError::InvalidInput("x".into()).instance_lost());
        assert!(!WasmCallError::Failed("x".into()).instance_lost());
        assert_eq!(
            WasmCallError::MemoryCap(64 << 20).to_string(),
            "exceeded its 64 MiB memory cap"
        );
    }
}
