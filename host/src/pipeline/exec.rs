//! Running one frame through one session's pipeline.
//!
//! A [`SessionRunner`] owns the session's instances of every Wasm node, so a
//! node can keep state across frames (motion detection needs the previous
//! frame) and no two sessions ever share an instance. The runner is used by
//! one frame at a time (the backpressure rule guarantees it) and is called on
//! a blocking thread, never on the async runtime: nodes do real CPU work.
//! Waves of independent nodes with more than one member run on scoped threads.
//! The runner counts its frame in the server's [`Occupancy`] while it runs, and
//! a node spreads its work over more than one thread only while its frame is
//! the only one executing.
//!
//! While the frame is alone, a `to_tensor` whose only input is the decoded
//! image runs beside the decoder, on the rows already decoded (see
//! [`row_feed`](crate::nodes::row_feed)): the second core would otherwise idle
//! through decoding. Its reported time is the time it computed, not the time
//! it waited for rows; the decoder's includes the last band it waited for.
//!
//! Native nodes run through their kinds' one dispatch point
//! ([`NativeNode::run`]); the Wasm nodes' instances and the fed decode above
//! are this module's own. A node that fails yields [`ExecError::Node`] naming
//! it (a frame that does not decode, [`ExecError::InvalidFrame`]); if its
//! instance trapped, the instance is dropped here and the next frame starts a
//! fresh one, so one bad frame cannot wedge a session.
//!
//! A frame runs within its [`FrameDeadline`] (`STREAMHOST_FRAME_TIMEOUT_MS`,
//! see [`crate::deadline`]). The executor checks it before each wave and
//! after: a node that is still running when the deadline passes fails the
//! frame as [`ExecError::Deadline`] naming it (the node that finished last in
//! its wave, for parallel branches), and no later node starts. An ONNX run is
//! terminated at the deadline, a Wasm call's epoch deadline is cut to the
//! frame's time left, and a native node finishes its step and is then named.
//! A frame whose session closed ([`FrameDeadline::abandon`]) stops at its
//! next node the same way, logged as `frame abandoned: session closed` with
//! the node it stopped at, since nobody is left to answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::dag::{Condition, Edge, Source};
use super::occupancy::Occupancy;
use super::plan::{NodeOp, Plan};
use crate::deadline::{Cancel, FrameDeadline};
use crate::frame::FrameError;
use crate::nodes::{jpeg_decode, to_tensor, NativeNode, NodeFailure, RunContext, SessionState};
use crate::value::{Tensor, Value};
use crate::wasm::instance::LogContext;
use crate::wasm::{FrameContext, InstanceLimits, NodeInstance, WasmEngine};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExecError {
    #[error(transparent)]
    InvalidFrame(#[from] FrameError),
    #[error("node '{node}' {reason}")]
    Node { node: String, reason: String },
    /// The frame's deadline passed while `node` ran (or before it started).
    #[error("node '{node}' exceeded the frame's {budget_ms} ms deadline")]
    Deadline { node: String, budget_ms: u64 },
    /// The frame's session closed; it stopped at `node` (never sent).
    #[error("frame abandoned at node '{node}': its session closed")]
    Abandoned { node: String },
    #[error("result is {size} bytes, over the {limit} byte limit")]
    ResultTooLarge { size: usize, limit: usize },
    #[error("internal error: {0}")]
    Internal(String),
}

/// Per-frame limits the executor enforces, and how far a native node may
/// spread one frame's work.
#[derive(Debug, Clone, Copy)]
pub struct ExecLimits {
    pub max_frame_pixels: u64,
    pub max_result_bytes: usize,
    /// Threads a native node (to_tensor, text_crop, argmax) may split its work
    /// over while its frame is the only one executing (otherwise one).
    pub node_threads: usize,
}

/// Which frame of its session a run is: what 0.2.0 Wasm nodes are told
/// (with the pipeline id) as their frame context.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameAt {
    /// The reply's `frame_index`: every frame the session received, from 1.
    pub index: u64,
    /// When it arrived, since the session started.
    pub received: Duration,
}

/// A frame's result and how long each node took.
#[derive(Debug)]
pub struct FrameOutcome {
    pub result: Result<Box<RawValue>, ExecError>,
    /// The nodes that ran, with how long each took.
    pub node_times: Vec<(usize, Duration)>,
    /// The nodes skipped on this frame (their `when` was false, or a
    /// required input's node was skipped).
    pub skipped: Vec<usize>,
}

/// A node ready to run: its index, its inputs, and its state to run with.
type Job<'a> = (usize, Vec<(String, Value)>, &'a mut NodeState);

enum NodeState {
    Native(SessionState),
    Wasm(Option<NodeInstance>),
}

/// One session's executable copy of a pipeline.
pub struct SessionRunner {
    plan: Arc<Plan>,
    engine: Arc<WasmEngine>,
    limits: ExecLimits,
    session_id: String,
    states: Vec<NodeState>,
    /// Each node's Wasm limits for this session (see `Plan::instance_limits`).
    instance_limits: Vec<InstanceLimits>,
    /// Frames executing server-wide; this runner's frame is counted while it runs.
    occupancy: Occupancy,
    /// For each `jpeg_decode` node, the `to_tensor` nodes that read nothing
    /// but its image, so can run on its rows while it decodes.
    fed_by: Vec<Vec<usize>>,
}

impl SessionRunner {
    /// Wasm instances are created lazily, on the first frame that needs them,
    /// under `instance_limits` (one per node, from `Plan::instance_limits`).
    pub fn new(
        plan: Arc<Plan>,
        engine: Arc<WasmEngine>,
        limits: ExecLimits,
        instance_limits: Vec<InstanceLimits>,
        occupancy: Occupancy,
        session_id: String,
    ) -> Self {
        let states = plan
            .nodes
            .iter()
            .map(|n| match &n.op {
                NodeOp::Wasm { .. } => NodeState::Wasm(None),
                NodeOp::Native(native) => NodeState::Native(native.session_state()),
            })
            .collect();
        let fed_by = (0..plan.nodes.len())
            .map(|i| fed_consumers(&plan, i))
            .collect();
        SessionRunner {
            fed_by,
            plan,
            engine,
            limits,
            session_id,
            states,
            instance_limits,
            occupancy,
        }
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Forgets the session's earlier frames: native nodes' state starts
    /// afresh, as on a session's first frame (Wasm instances are kept).
    pub fn forget_frames(&mut self) {
        for (state, node) in self.states.iter_mut().zip(&self.plan.nodes) {
            if let (NodeState::Native(state), NodeOp::Native(native)) = (state, &node.op) {
                *state = native.session_state();
            }
        }
    }

    /// Runs the whole DAG on `frame`, however long it takes.
    pub fn run(&mut self, frame: bytes::Bytes, at: FrameAt) -> FrameOutcome {
        self.run_until(frame, at, &FrameDeadline::none())
    }

    /// Runs the whole DAG on `frame` within `deadline` (started here if its
    /// caller has not started it), stopping when it is cancelled.
    pub fn run_until(
        &mut self,
        frame: bytes::Bytes,
        at: FrameAt,
        deadline: &FrameDeadline,
    ) -> FrameOutcome {
        deadline.start();
        let occupancy = self.occupancy.clone();
        let _running = occupancy.enter();
        let n = self.plan.nodes.len();
        let mut node_times = Vec::with_capacity(n);
        let mut skipped = vec![false; n];
        let result = self.run_waves(frame, at, deadline, &mut node_times, &mut skipped);
        if result.is_err() {
            // A failed frame may have left a node's memory half-updated (a
            // crop marked read whose line never came): start afresh.
            self.forget_frames();
        }
        FrameOutcome {
            result,
            node_times,
            skipped: (0..n).filter(|&i| skipped[i]).collect(),
        }
    }

    /// The waves of one frame: its result, each node's time into
    /// `node_times`, and which nodes were skipped into `skipped`.
    fn run_waves(
        &mut self,
        frame: bytes::Bytes,
        at: FrameAt,
        deadline: &FrameDeadline,
        node_times: &mut Vec<(usize, Duration)>,
        skipped: &mut [bool],
    ) -> Result<Box<RawValue>, ExecError> {
        let n = self.plan.nodes.len();
        let mut outputs: Vec<Option<Value>> = vec![None; n];
        let frame = Value::Jpeg(frame);
        let plan = self.plan.clone();
        for wave in &plan.dag.waves {
            let pending = wave
                .iter()
                .copied()
                .find(|&i| outputs[i].is_none() && !skipped[i]);
            if let (Some(i), Some(why)) = (pending, deadline.cancelled()) {
                return Err(self.cut(i, why, deadline, at));
            }
            let timed_before = node_times.len();
            if let [i] = wave[..] {
                match self.decode_feeding(i, &frame, &mut outputs, skipped, node_times) {
                    Some(Ok(())) => {
                        if let Some(e) = self.late(&node_times[timed_before..], deadline, at) {
                            return Err(e);
                        }
                        continue;
                    }
                    Some(Err(e)) => return Err(self.failed(i, e, deadline, at)),
                    None => {}
                }
            }
            let mut jobs: Vec<Job<'_>> = Vec::with_capacity(wave.len());
            // Disjoint &mut borrows of the wave's node states, in wave order.
            let mut wanted = wave.iter().copied().peekable();
            for (i, state) in self.states.iter_mut().enumerate() {
                if wanted.peek() != Some(&i) {
                    continue;
                }
                wanted.next();
                if outputs[i].is_some() {
                    continue; // computed beside the decoder
                }
                if skips(&plan, i, &outputs, skipped) {
                    skipped[i] = true;
                    continue;
                }
                let inputs = gather_inputs(&plan, i, &frame, &outputs, skipped)?;
                jobs.push((i, inputs, state));
            }
            let ctx = NodeCtx {
                plan: &plan,
                engine: &self.engine,
                limits: self.limits,
                instance_limits: &self.instance_limits,
                session_id: &self.session_id,
                occupancy: &self.occupancy,
                at,
                deadline,
            };
            if jobs.is_empty() {
                continue;
            }
            let results: Vec<(usize, Result<Value, ExecError>, Duration)> = if jobs.len() == 1 {
                jobs.into_iter()
                    .map(|(i, inputs, state)| ctx.timed(i, inputs, state))
                    .collect()
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = jobs
                        .into_iter()
                        .map(|(i, inputs, state)| {
                            (i, scope.spawn(move || ctx.timed(i, inputs, state)))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|(i, h)| {
                            h.join().unwrap_or_else(|_| {
                                (
                                    i,
                                    Err(ExecError::Internal(format!(
                                        "node '{}' panicked",
                                        plan.nodes[i].id
                                    ))),
                                    Duration::ZERO,
                                )
                            })
                        })
                        .collect()
                })
            };
            for (i, result, took) in results {
                node_times.push((i, took));
                match result {
                    Ok(v) => outputs[i] = Some(v),
                    Err(e) => return Err(self.failed(i, e, deadline, at)),
                }
            }
            if let Some(e) = self.late(&node_times[timed_before..], deadline, at) {
                return Err(e);
            }
        }
        match outputs.get_mut(plan.dag.output).and_then(Option::take) {
            Some(v) => self.finish(v),
            None => Err(ExecError::Internal("output node produced nothing".into())),
        }
    }

    /// The error for a frame stopped at node `i` because of `why`; an
    /// abandoned frame is logged here, as nobody will read its answer.
    fn cut(&self, i: usize, why: Cancel, deadline: &FrameDeadline, at: FrameAt) -> ExecError {
        let node = self
            .plan
            .nodes
            .get(i)
            .map(|n| n.id.clone())
            .unwrap_or_default();
        match why {
            Cancel::Deadline => ExecError::Deadline {
                node,
                budget_ms: deadline.budget_ms(),
            },
            Cancel::SessionClosed => {
                tracing::info!(session_id = %self.session_id, pipeline_id = %self.plan.id, frame_index = at.index,
                    node_id = %node, "frame abandoned: session closed");
                ExecError::Abandoned { node }
            }
        }
    }

    /// Node `i` failed with `e`: if its frame was cancelled meanwhile, that
    /// is why (an interrupted ONNX run, a Wasm call cut short), so say that.
    fn failed(&self, i: usize, e: ExecError, deadline: &FrameDeadline, at: FrameAt) -> ExecError {
        match deadline.cancelled() {
            Some(why) => self.cut(i, why, deadline, at),
            None => e,
        }
    }

    /// After a wave whose nodes all succeeded (their times in `wave_times`):
    /// past the deadline, the frame fails naming the node that finished last,
    /// which was running when it passed. A closed session is left to the next
    /// wave's check, so the frame stops before its next node.
    fn late(
        &self,
        wave_times: &[(usize, Duration)],
        deadline: &FrameDeadline,
        at: FrameAt,
    ) -> Option<ExecError> {
        if deadline.cancelled() != Some(Cancel::Deadline) {
            return None;
        }
        let (last, _) = wave_times.iter().max_by_key(|(_, took)| *took)?;
        Some(self.cut(*last, Cancel::Deadline, deadline, at))
    }

    /// Decodes the frame at node `i` with the `to_tensor` nodes it feeds
    /// running on its rows (one thread each, as many as `node_threads` leaves
    /// beside the decoder), when `i` is a `jpeg_decode` that feeds any and
    /// this frame is alone. `None` when that does not apply: the wave runs as
    /// usual. A consumer that produced nothing is left for its own wave.
    fn decode_feeding(
        &self,
        i: usize,
        frame: &Value,
        outputs: &mut [Option<Value>],
        skipped: &[bool],
        node_times: &mut Vec<(usize, Duration)>,
    ) -> Option<Result<(), ExecError>> {
        let plan = &self.plan;
        let NodeOp::Native(NativeNode::JpegDecode(config)) = &plan.nodes.get(i)?.op else {
            return None;
        };
        if plan.dag.when.get(i)?.is_some() {
            return None; // conditional: the wave decides whether it runs
        }
        let spare = self.limits.node_threads.saturating_sub(1);
        let fed = self.fed_by.get(i)?;
        let consumers = fed.get(..spare.min(fed.len()))?;
        if consumers.is_empty() || !self.occupancy.alone() {
            return None;
        }
        let Ok(inputs) = gather_inputs(plan, i, frame, outputs, skipped) else {
            return None;
        };
        let Some((_, Value::Jpeg(bytes))) = inputs.first() else {
            return None;
        };
        let start = Instant::now();
        let (image, fed) = jpeg_decode::decode_feeding(
            bytes,
            config,
            self.limits.max_frame_pixels,
            consumers.len(),
            |k, mut feed| {
                let started = Instant::now();
                let node = consumers.get(k).and_then(|&j| plan.nodes.get(j))?;
                let NodeOp::Native(NativeNode::ToTensor(cfg)) = &node.op else {
                    return None;
                };
                let result = to_tensor::to_tensor_fed(&mut feed, cfg)?;
                Some((result, started.elapsed().saturating_sub(feed.waited())))
            },
        );
        node_times.push((i, start.elapsed()));
        let image = match image {
            Ok(image) => image,
            Err(e) => return Some(Err(e.into())),
        };
        outputs[i] = Some(Value::Image(Arc::new(image)));
        for (&j, result) in consumers.iter().zip(fed) {
            match result.flatten() {
                Some((Ok(tensors), took)) => {
                    node_times.push((j, took));
                    outputs[j] = Some(Value::Tensors(Arc::new(tensors)));
                }
                Some((Err(e), took)) => {
                    node_times.push((j, took));
                    return Some(Err(ExecError::Node {
                        node: plan.nodes[j].id.clone(),
                        reason: e.to_string(),
                    }));
                }
                None => {}
            }
        }
        Some(Ok(()))
    }

    /// The result as the JSON text the reply embeds: serialised once, here,
    /// where its size is checked against the limit.
    fn finish(&self, v: Value) -> Result<Box<RawValue>, ExecError> {
        let text = serde_json::value::to_raw_value(&v.into_result())
            .map_err(|e| ExecError::Internal(format!("result could not be encoded: {e}")))?;
        let size = text.get().len();
        if size > self.limits.max_result_bytes {
            return Err(ExecError::ResultTooLarge {
                size,
                limit: self.limits.max_result_bytes,
            });
        }
        Ok(text)
    }
}

/// The `to_tensor` nodes whose one input is node `i`'s whole output, if `i`
/// is a `jpeg_decode`: they can read its rows while it decodes.
fn fed_consumers(plan: &Plan, i: usize) -> Vec<usize> {
    if !matches!(
        plan.nodes.get(i).map(|n| &n.op),
        Some(NodeOp::Native(NativeNode::JpegDecode(_)))
    ) {
        return Vec::new();
    }
    (0..plan.nodes.len())
        .filter(|&j| matches!(plan.nodes[j].op, NodeOp::Native(NativeNode::ToTensor(_))))
        .filter(|&j| plan.dag.when.get(j).is_some_and(Option::is_none))
        .filter(|&j| {
            matches!(
                plan.dag.inputs.get(j).map(Vec::as_slice),
                Some([Edge { source: Source::Node(src), tensor: None, .. }]) if *src == i
            )
        })
        .collect()
}

/// Whether node `i` is skipped on this frame: its condition is false, or a
/// required input comes from a node that was skipped.
fn skips(plan: &Plan, i: usize, outputs: &[Option<Value>], skipped: &[bool]) -> bool {
    let needs_skipped = plan.dag.inputs[i].iter().any(|e| match e.source {
        Source::Node(j) => !e.optional && skipped[j],
        Source::Frame => false,
    });
    let condition_false = match &plan.dag.when[i] {
        Some(c) => skipped[c.source] || !holds(c, outputs[c.source].as_ref()),
        None => false,
    };
    needs_skipped || condition_false
}

/// Whether a `when` condition holds for its source's value (see
/// [`Condition`] for what counts as true).
pub fn holds(c: &Condition, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        return false;
    };
    match (value, &c.field) {
        (Value::Json(v), field) => {
            let v = match field {
                Some(path) => path.split('.').try_fold(v, |v, key| v.get(key)),
                None => Some(v),
            };
            match v {
                None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => {
                    false
                }
                Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
                Some(serde_json::Value::String(s)) => !s.is_empty(),
                Some(serde_json::Value::Array(a)) => !a.is_empty(),
                Some(serde_json::Value::Object(o)) => !o.is_empty(),
                Some(serde_json::Value::Bool(true)) => true,
            }
        }
        (Value::Tensors(ts), field) => ts
            .iter()
            .any(|t| field.as_ref().is_none_or(|f| &t.name == f) && !t.data.is_empty()),
        _ => true,
    }
}

/// Node `i`'s inputs, in manifest order, less the optional ones whose node
/// was skipped.
fn gather_inputs(
    plan: &Plan,
    i: usize,
    frame: &Value,
    outputs: &[Option<Value>],
    skipped: &[bool],
) -> Result<Vec<(String, Value)>, ExecError> {
    plan.dag.inputs[i]
        .iter()
        .filter(|edge| match edge.source {
            Source::Node(j) => !(edge.optional && skipped[j]),
            Source::Frame => true,
        })
        .map(|edge| gather_one(plan, i, edge, frame, outputs))
        .collect()
}

fn gather_one(
    plan: &Plan,
    i: usize,
    edge: &Edge,
    frame: &Value,
    outputs: &[Option<Value>],
) -> Result<(String, Value), ExecError> {
    let j = match edge.source {
        Source::Frame => return Ok(("frame".to_string(), frame.clone())),
        Source::Node(j) => j,
    };
    let (from, to) = (&plan.nodes[j].id, &plan.nodes[i].id);
    let value = outputs.get(j).and_then(|o| o.clone()).ok_or_else(|| {
        ExecError::Internal(format!("input '{from}' of node '{to}' was not computed"))
    })?;
    let Some(tensor) = &edge.tensor else {
        return Ok((from.clone(), value));
    };
    let fail = |reason: String| ExecError::Node {
        node: to.clone(),
        reason,
    };
    match value {
        Value::Tensors(ts) => {
            let picked: Vec<Tensor> = ts.iter().filter(|t| &t.name == tensor).cloned().collect();
            if picked.is_empty() {
                return Err(fail(format!(
                    "input '{from}.{tensor}': '{from}' produced no tensor named '{tensor}'"
                )));
            }
            Ok((from.clone(), Value::Tensors(Arc::new(picked))))
        }
        other => Err(fail(format!(
            "input '{from}.{tensor}': '{from}' produced {}, not tensors",
            other.kind()
        ))),
    }
}

#[derive(Clone, Copy)]
struct NodeCtx<'a> {
    plan: &'a Plan,
    engine: &'a WasmEngine,
    limits: ExecLimits,
    instance_limits: &'a [InstanceLimits],
    session_id: &'a str,
    occupancy: &'a Occupancy,
    at: FrameAt,
    deadline: &'a FrameDeadline,
}

impl NodeCtx<'_> {
    fn timed(
        &self,
        i: usize,
        inputs: Vec<(String, Value)>,
        state: &mut NodeState,
    ) -> (usize, Result<Value, ExecError>, Duration) {
        let start = Instant::now();
        let result = self.run_node(i, inputs, state);
        (i, result, start.elapsed())
    }

    fn run_node(
        &self,
        i: usize,
        inputs: Vec<(String, Value)>,
        state: &mut NodeState,
    ) -> Result<Value, ExecError> {
        let node = &self.plan.nodes[i];
        // Decided as the node starts: a frame that arrives meanwhile only
        // makes the next node narrow (see `occupancy`).
        let alone = self.occupancy.alone();
        let threads = if alone { self.limits.node_threads } else { 1 };
        let fail = |reason: String| ExecError::Node {
            node: node.id.clone(),
            reason,
        };
        match (&node.op, state) {
            (NodeOp::Native(native), NodeState::Native(memory)) => {
                let ctx = RunContext {
                    max_frame_pixels: self.limits.max_frame_pixels,
                    threads,
                    alone,
                    deadline: self.deadline,
                };
                native.run(&inputs, ctx, memory).map_err(|e| match e {
                    NodeFailure::Frame(e) => ExecError::InvalidFrame(e),
                    NodeFailure::Node(reason) => fail(reason),
                })
            }
            (
                NodeOp::Wasm {
                    component,
                    config_json,
                    ..
                },
                NodeState::Wasm(slot),
            ) => {
                let instance = match slot {
                    Some(instance) => instance,
                    None => {
                        let log = LogContext {
                            session_id: self.session_id.to_string(),
                            pipeline_id: self.plan.id.clone(),
                            node_id: node.id.clone(),
                        };
                        let limits = self
                            .instance_limits
                            .get(i)
                            .copied()
                            .unwrap_or_else(|| self.engine.limits().instance_limits());
                        slot.insert(
                            NodeInstance::start(self.engine, component, config_json, limits, log)
                                .map_err(|e| fail(e.to_string()))?,
                        )
                    }
                };
                let frame = FrameContext {
                    frame_index: self.at.index,
                    received: self.at.received,
                    pipeline_id: &self.plan.id,
                };
                let result = instance.process_within(frame, &inputs, self.deadline.remaining());
                if let Err(e) = &result {
                    if e.instance_lost() {
                        tracing::warn!(session_id = %self.session_id, pipeline_id = %self.plan.id, node_id = %node.id,
                            error = %e, "wasm instance discarded; the next frame gets a fresh one");
                        *slot = None;
                    }
                }
                result.map_err(|e| fail(e.to_string()))
            }
            _ => Err(ExecError::Internal(format!(
                "node '{}' has mismatched state",
                node.id
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::kinds::Signature;
    use crate::nodes::jpeg_decode::JpegDecodeConfig;
    use crate::nodes::to_tensor::ToTensorConfig;
    use crate::pipeline::dag::Dag;
    use crate::pipeline::plan::PlannedNode;
    use crate::wasm::SandboxLimits;

    /// decode -> pre (a `to_tensor` fed by the decoder) and decode -> post (a
    /// `to_tensor` that also reads `pre`, so cannot be fed).
    fn plan() -> Plan {
        let pre: ToTensorConfig = serde_json::from_str(
            r#"{"channels":"bgr","scale":0.0039215686,"mean":[0.5,0.5,0.5],"std":[0.5,0.5,0.5],
                "resize":{"mode":"fit","limit_side_len":640}}"#,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let edge = |source| Edge {
            source,
            tensor: None,
            optional: false,
        };
        Plan {
            id: "fed".into(),
            nodes: vec![
                PlannedNode {
                    id: "decode".into(),
                    op: NodeOp::Native(NativeNode::JpegDecode(JpegDecodeConfig::default())),
                    signature: Signature::UNDECLARED,
                },
                PlannedNode {
                    id: "pre".into(),
                    op: NodeOp::Native(NativeNode::ToTensor(pre.clone())),
                    signature: Signature::UNDECLARED,
                },
                PlannedNode {
                    id: "post".into(),
                    op: NodeOp::Native(NativeNode::ToTensor(pre)),
                    signature: Signature::UNDECLARED,
                },
            ],
            dag: Dag::unconditional(
                vec![
                    vec![edge(Source::Frame)],
                    vec![edge(Source::Node(0))],
                    vec![edge(Source::Node(0)), edge(Source::Node(1))],
                ],
                vec![vec![0], vec![1], vec![2]],
                1,
            ),
        }
    }

    fn runner(node_threads: usize, occupancy: Occupancy) -> SessionRunner {
        let c = Config::default();
        let engine =
            WasmEngine::new(SandboxLimits::from_config(&c)).unwrap_or_else(|e| unreachable!("{e}"));
        let limits = ExecLimits {
            max_frame_pixels: c.max_frame_pixels,
            max_result_bytes: c.max_result_bytes,
            node_threads,
        };
        SessionRunner::new(
            Arc::new(plan()),
            Arc::new(engine),
            limits,
            vec![],
            occupancy,
            "test".into(),
        )
    }

    /// A 1280x720 frame (resampled to 640x352) and a 640x480 one (read in place).
    fn frames() -> Vec<Vec<u8>> {
        [(1280usize, 720usize), (640, 480)]
            .iter()
            .map(|&(w, h)| {
                let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
                jpeg_decode::encode_rgb(w, h, &rgb, 85.0).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn only_a_to_tensor_reading_nothing_but_the_decoded_image_is_fed() {
        let plan = plan();
        assert_eq!(fed_consumers(&plan, 0), vec![1]);
        assert_eq!(fed_consumers(&plan, 1), Vec::<usize>::new());
    }

    #[test]
    fn a_frame_alone_computes_its_tensor_beside_the_decoder_with_the_same_values() {
        for jpeg in frames() {
            let frame = Value::Jpeg(jpeg.clone().into());
            let fed = runner(2, Occupancy::default());
            let mut outputs = vec![None; 3];
            let mut times = Vec::new();
            let done = fed.decode_feeding(0, &frame, &mut outputs, &[false; 3], &mut times);
            assert_eq!(done, Some(Ok(())));
            let mut timed: Vec<usize> = times.iter().map(|t| t.0).collect();
            timed.sort_unstable();
            assert_eq!(timed, vec![0, 1], "decode and pre were both timed");
            // What the sequential path computes from the same frame.
            let image = jpeg_decode::decode(&jpeg, &JpegDecodeConfig::default(), 1 << 30);
            let NodeOp::Native(NativeNode::ToTensor(cfg)) = &fed.plan.nodes[1].op else {
                unreachable!()
            };
            let want = image.map(|img| to_tensor::to_tensor(&img, cfg, 1));
            let same = match (&outputs[1], &want) {
                (Some(Value::Tensors(got)), Ok(Ok(want))) => **got == *want,
                _ => false,
            };
            assert!(
                same,
                "pre's {:?} differs from the sequential path's",
                outputs[1].as_ref().map(Value::kind)
            );
            assert!(outputs[2].is_none(), "post waits for its wave");
            // The whole frame through run(): pre is not computed twice.
            let mut whole = runner(2, Occupancy::default());
            let outcome = whole.run(jpeg.into(), FrameAt::default());
            assert!(outcome.result.is_ok(), "{:?}", outcome.result);
            let mut ran: Vec<usize> = outcome.node_times.iter().map(|t| t.0).collect();
            ran.sort_unstable();
            assert_eq!(ran, vec![0, 1, 2]);
        }
    }

    #[test]
    fn nothing_is_fed_on_one_node_thread_or_beside_another_frame() {
        let frame = Value::Jpeg(frames().remove(1).into());
        let mut outputs = vec![None; 3];
        let one = runner(1, Occupancy::default());
        assert_eq!(
            one.decode_feeding(0, &frame, &mut outputs, &[false; 3], &mut Vec::new()),
            None
        );
        let busy = Occupancy::default();
        let _this = busy.enter();
        let _other = busy.enter();
        let shared = runner(2, busy.clone());
        assert_eq!(
            shared.decode_feeding(0, &frame, &mut outputs, &[false; 3], &mut Vec::new()),
            None
        );
        assert!(outputs.iter().all(Option::is_none));
    }

    #[test]
    fn a_cancelled_frame_starts_no_further_node_and_says_where_it_stopped() {
        let jpeg = frames().remove(1);
        let late = FrameDeadline::new(Some(Duration::ZERO));
        let outcome = runner(2, Occupancy::default()).run_until(
            jpeg.clone().into(),
            FrameAt::default(),
            &late,
        );
        assert_eq!(
            outcome.result.map(|_| ()),
            Err(ExecError::Deadline {
                node: "decode".into(),
                budget_ms: 0
            })
        );
        assert!(outcome.node_times.is_empty(), "no node ran");
        let gone = FrameDeadline::none();
        gone.abandon();
        let outcome =
            runner(1, Occupancy::default()).run_until(jpeg.into(), FrameAt::default(), &gone);
        assert_eq!(
            outcome.result.map(|_| ()),
            Err(ExecError::Abandoned {
                node: "decode".into()
            })
        );
        assert!(outcome.node_times.is_empty(), "no node ran");
    }

    #[test]
    fn a_corrupt_frame_fails_with_the_decoders_error_either_way() {
        let mut jpeg = frames().remove(1);
        jpeg.truncate(jpeg.len() / 2);
        let want = jpeg_decode::decode(&jpeg, &JpegDecodeConfig::default(), 1 << 30)
            .map(|_| ())
            .map_err(ExecError::from);
        assert!(want.is_err());
        for threads in [1, 2] {
            let outcome =
                runner(threads, Occupancy::default()).run(jpeg.clone().into(), FrameAt::default());
            assert_eq!(outcome.result.map(|_| ()), want, "{threads} node threads");
        }
    }
}
