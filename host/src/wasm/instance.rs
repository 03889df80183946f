//! One session's live instance of a node: its own `Store`, memory cap, time
//! limit and log budget.
//!
//! Every call sets a fresh epoch deadline, so a guest that loops is trapped
//! after the configured time, or sooner when its frame has less time left
//! (the frame deadline, `crate::deadline`). The memory cap is a `ResourceLimiter` that adds
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

use std::sync::PoisonError;
use std::time::Duration;

use wasmtime::{Store, Trap};

use super::bindings::{v1, v2};
use super::component::{NodeComponent, NodePre};
use super::convert;
use super::engine::{InstanceLimits, WasmEngine};
use super::store::NodeStore;
pub use super::store::{LogContext, MAX_LOG_LINE};
use crate::kinds::{Kind, Kinds, Signature};
use crate::value::Value;

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

/// Which frame a call is about: what a 0.2.0 node's `process` receives.
#[derive(Debug, Clone, Copy)]
pub struct FrameContext<'a> {
    /// The client's frame number in its session (dropped frames counted).
    pub frame_index: u64,
    /// When the frame arrived, since the session's WebSocket was accepted.
    pub received: Duration,
    pub pipeline_id: &'a str,
}

enum Bindings {
    V1(v1::NodeWorld),
    V2(v2::NodeWorld),
}

/// A live node instance belonging to one session.
pub struct NodeInstance {
    store: Store<NodeStore>,
    bindings: Bindings,
    call_timeout: Duration,
    deadline_ticks: u64,
    /// The epoch ticker's period, to turn a frame's time left into ticks.
    epoch_tick: Duration,
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
        let (mut store, deadline_ticks) = new_store(engine, limits, log);
        let instantiate_err = |e: wasmtime::Error| WasmCallError::Instantiate(format!("{e:#}"));
        let bindings = match &component.pre {
            NodePre::V1(pre) => Bindings::V1(pre.instantiate(&mut store).map_err(instantiate_err)?),
            NodePre::V2(pre) => Bindings::V2(pre.instantiate(&mut store).map_err(instantiate_err)?),
        };
        let mut instance = NodeInstance {
            store,
            bindings,
            call_timeout: limits.call_timeout,
            deadline_ticks,
            epoch_tick: engine.limits().epoch_tick,
        };
        instance.init(config_json)?;
        Ok(instance)
    }

    fn init(&mut self, config_json: &str) -> Result<(), WasmCallError> {
        self.before_call(None);
        let (bindings, store) = (&self.bindings, &mut self.store);
        let call = move || match bindings {
            Bindings::V1(b) => b
                .streamhost_node_node()
                .call_init(store, config_json)
                .map(|r| r.map_err(node_error_v1)),
            Bindings::V2(b) => b
                .streamhost_node_node()
                .call_init(store, config_json)
                .map(|r| r.map_err(node_error_v2)),
        };
        // WASI's synchronous bindings `block_on` the current tokio runtime,
        // which panics on a runtime worker thread: instances start only on
        // blocking or plain threads (frames run in `spawn_blocking`, and
        // `AppState::build`, which instantiates each node once at load, is
        // called off the runtime's workers).
        let outcome = call();
        self.after_call();
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(self.classify_trap(e)),
        }
    }

    /// Runs the node on one frame's inputs. A 0.1.0 node is not told the
    /// frame's context (its `process` takes only the inputs).
    pub fn process(
        &mut self,
        frame: FrameContext<'_>,
        inputs: &[(String, Value)],
    ) -> Result<Value, WasmCallError> {
        self.process_within(frame, inputs, None)
    }

    /// [`process`](Self::process) with `time_left`, the frame's when it has a
    /// deadline: the call is interrupted then if that comes before its own
    /// time limit (reported as a timeout: the caller knows which limit it was).
    pub fn process_within(
        &mut self,
        frame: FrameContext<'_>,
        inputs: &[(String, Value)],
        time_left: Option<Duration>,
    ) -> Result<Value, WasmCallError> {
        self.before_call(time_left);
        let (bindings, store) = (&self.bindings, &mut self.store);
        let outcome = match bindings {
            Bindings::V1(b) => convert::v1::with_wit_inputs(inputs, |args| {
                b.streamhost_node_node()
                    .call_process(&mut *store, args)
                    .map(|r| match r {
                        Ok(value) => {
                            convert::v1::from_wit_value(value).map_err(WasmCallError::BadOutput)
                        }
                        Err(e) => Err(node_error_v1(e)),
                    })
            }),
            Bindings::V2(b) => {
                let context = v2::wit::FrameContext {
                    frame_index: frame.frame_index,
                    received_us: u64::try_from(frame.received.as_micros()).unwrap_or(u64::MAX),
                    pipeline_id: frame.pipeline_id,
                };
                convert::v2::with_wit_inputs(inputs, |args| {
                    b.streamhost_node_node()
                        .call_process(&mut *store, context, args)
                        .map(|r| match r {
                            Ok(value) => {
                                convert::v2::from_wit_value(value).map_err(WasmCallError::BadOutput)
                            }
                            Err(e) => Err(node_error_v2(e)),
                        })
                })
            }
        }
        .map_err(WasmCallError::InvalidInput)?;
        self.after_call();
        match outcome {
            Ok(result) => result,
            Err(e) => Err(self.classify_trap(e)),
        }
    }

    fn before_call(&mut self, time_left: Option<Duration>) {
        // One tick more than the time left: the first tick may come at once,
        // and the call must not stop before the frame's deadline has passed.
        let tick = self.epoch_tick.as_micros().max(1);
        let ticks = time_left.map_or(u64::MAX, |left| {
            u64::try_from(left.as_micros().div_ceil(tick))
                .unwrap_or(u64::MAX)
                .saturating_add(1)
        });
        self.store
            .set_epoch_deadline(self.deadline_ticks.min(ticks).max(1));
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

/// A fresh store for one instance: its memory cap, its log budget, its
/// per-call deadline (in epoch ticks, returned).
fn new_store(
    engine: &WasmEngine,
    limits: InstanceLimits,
    log: LogContext,
) -> (Store<NodeStore>, u64) {
    let sandbox = engine.limits();
    let data = NodeStore::new(limits.memory_bytes, &sandbox, log);
    let mut store = Store::new(&engine.engine, data);
    store.limiter(|s| &mut s.limiter);
    let deadline_ticks = sandbox.deadline_ticks(limits.call_timeout);
    store.set_epoch_deadline(deadline_ticks);
    store.epoch_deadline_trap();
    (store, deadline_ticks)
}

/// Asks a 0.2.0 component for its signature, on an instance made for the
/// purpose under the server's limits and dropped after. Called once per
/// component, when it loads (off the async runtime's workers, as all
/// instantiation is).
pub(crate) fn describe(
    engine: &WasmEngine,
    pre: &v2::NodeWorldPre<NodeStore>,
) -> Result<Signature, String> {
    let log = LogContext {
        session_id: "load-check".into(),
        pipeline_id: String::new(),
        node_id: "describe".into(),
    };
    let (mut store, _) = new_store(engine, engine.limits().instance_limits(), log);
    let bindings = pre
        .instantiate(&mut store)
        .map_err(|e| format!("could not be instantiated: {e:#}"))?;
    let declared = bindings
        .streamhost_node_node()
        .call_describe(&mut store)
        .map_err(|e| {
            if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                "exceeded its time limit".to_string()
            } else {
                format!("trapped: {e:#}")
            }
        })?;
    let kinds = |list: &[v2::wit::Kind]| {
        Kinds::of(
            &list
                .iter()
                .map(|k| match k {
                    v2::wit::Kind::Image => Kind::Image,
                    v2::wit::Kind::Tensors => Kind::Tensors,
                    v2::wit::Kind::Detections => Kind::Detections,
                    v2::wit::Kind::Json => Kind::Json,
                })
                .collect::<Vec<_>>(),
        )
    };
    let signature = Signature::new(kinds(&declared.takes), kinds(&declared.gives));
    if signature.gives.is_empty() {
        return Err("declares that it gives nothing; `gives` must name at least one kind".into());
    }
    Ok(signature)
}

fn node_error_v1(e: v1::wit::NodeError) -> WasmCallError {
    match e {
        v1::wit::NodeError::InvalidConfig(m) => WasmCallError::InvalidConfig(m),
        v1::wit::NodeError::InvalidInput(m) => WasmCallError::InvalidInput(m),
        v1::wit::NodeError::Failed(m) => WasmCallError::Failed(m),
    }
}

fn node_error_v2(e: v2::wit::NodeError) -> WasmCallError {
    match e {
        v2::wit::NodeError::InvalidConfig(m) => WasmCallError::InvalidConfig(m),
        v2::wit::NodeError::InvalidInput(m) => WasmCallError::InvalidInput(m),
        v2::wit::NodeError::Failed(m) => WasmCallError::Failed(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
