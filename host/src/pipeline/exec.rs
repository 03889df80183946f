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
//! A node that fails yields [`ExecError::Node`] naming it; if its instance
//! trapped, the instance is dropped here and the next frame starts a fresh
//! one, so one bad frame cannot wedge a session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::dag::{Edge, Source};
use super::occupancy::Occupancy;
use super::registry::{NodeOp, Plan};
use crate::frame::FrameError;
use crate::nodes::{argmax, jpeg_decode, text_crop, to_tensor};
use crate::value::{Tensor, Value};
use crate::wasm::instance::LogContext;
use crate::wasm::{InstanceLimits, NodeInstance, WasmEngine};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExecError {
    #[error(transparent)]
    InvalidFrame(#[from] FrameError),
    #[error("node '{node}' {reason}")]
    Node { node: String, reason: String },
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

/// A frame's result and how long each node took.
#[derive(Debug)]
pub struct FrameOutcome {
    pub result: Result<Box<RawValue>, ExecError>,
    pub node_times: Vec<(usize, Duration)>,
}

/// A node ready to run: its index, its inputs, and its state to run with.
type Job<'a> = (usize, Vec<(String, Value)>, &'a mut NodeState);

enum NodeState {
    Native,
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
            .map(|n| match n.op {
                NodeOp::Wasm { .. } => NodeState::Wasm(None),
                _ => NodeState::Native,
            })
            .collect();
        SessionRunner {
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

    /// Runs the whole DAG on `frame`.
    pub fn run(&mut self, frame: bytes::Bytes) -> FrameOutcome {
        let _running = self.occupancy.enter();
        let n = self.plan.nodes.len();
        let mut outputs: Vec<Option<Value>> = vec![None; n];
        let mut node_times = Vec::with_capacity(n);
        let frame = Value::Jpeg(frame);
        let plan = self.plan.clone();
        for wave in &plan.dag.waves {
            let mut jobs: Vec<Job<'_>> = Vec::with_capacity(wave.len());
            // Disjoint &mut borrows of the wave's node states, in wave order.
            let mut wanted = wave.iter().copied().peekable();
            for (i, state) in self.states.iter_mut().enumerate() {
                if wanted.peek() != Some(&i) {
                    continue;
                }
                wanted.next();
                let inputs = match gather_inputs(&plan, i, &frame, &outputs) {
                    Ok(inputs) => inputs,
                    Err(e) => {
                        return FrameOutcome {
                            result: Err(e),
                            node_times,
                        }
                    }
                };
                jobs.push((i, inputs, state));
            }
            let ctx = NodeCtx {
                plan: &plan,
                engine: &self.engine,
                limits: self.limits,
                instance_limits: &self.instance_limits,
                session_id: &self.session_id,
                occupancy: &self.occupancy,
            };
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
                    Err(e) => {
                        return FrameOutcome {
                            result: Err(e),
                            node_times,
                        }
                    }
                }
            }
        }
        let result = match outputs.get_mut(plan.dag.output).and_then(Option::take) {
            Some(v) => self.finish(v),
            None => Err(ExecError::Internal("output node produced nothing".into())),
        };
        FrameOutcome { result, node_times }
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

fn gather_inputs(
    plan: &Plan,
    i: usize,
    frame: &Value,
    outputs: &[Option<Value>],
) -> Result<Vec<(String, Value)>, ExecError> {
    plan.dag.inputs[i]
        .iter()
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

fn kind_of(input: Option<&(String, Value)>) -> &'static str {
    input.map(|(_, v)| v.kind()).unwrap_or("nothing")
}

#[derive(Clone, Copy)]
struct NodeCtx<'a> {
    plan: &'a Plan,
    engine: &'a WasmEngine,
    limits: ExecLimits,
    instance_limits: &'a [InstanceLimits],
    session_id: &'a str,
    occupancy: &'a Occupancy,
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
            (NodeOp::JpegDecode(config), NodeState::Native) => match inputs.first() {
                Some((_, Value::Jpeg(bytes))) => {
                    let image = jpeg_decode::decode(bytes, config, self.limits.max_frame_pixels)?;
                    Ok(Value::Image(Arc::new(image)))
                }
                _ => Err(fail("expects the client's JPEG frame as its input".into())),
            },
            (NodeOp::ToTensor(config), NodeState::Native) => match inputs.first() {
                Some((_, Value::Image(img))) => to_tensor::to_tensor(img, config, threads)
                    .map(|ts| Value::Tensors(Arc::new(ts)))
                    .map_err(|e| fail(e.to_string())),
                other => Err(fail(format!("expects an image, got {}", kind_of(other)))),
            },
            (NodeOp::TextCrop(config), NodeState::Native) => {
                match (inputs.first(), inputs.get(1)) {
                    (Some((_, Value::Image(img))), Some((_, Value::Json(boxes)))) => {
                        let boxes =
                            text_crop::parse_boxes(boxes).map_err(|e| fail(e.to_string()))?;
                        let crops = text_crop::text_crop(img, &boxes, config, threads)
                            .map_err(|e| fail(e.to_string()))?;
                        Ok(Value::Tensors(Arc::new(crops)))
                    }
                    _ => Err(fail("expects an image and a JSON list of boxes".into())),
                }
            }
            (NodeOp::Argmax(config), NodeState::Native) => match inputs.first() {
                Some((_, Value::Tensors(ts))) => {
                    let offered: Vec<&Tensor> = ts.iter().collect();
                    argmax::argmax(&offered, config, threads)
                        .map(|ts| Value::Tensors(Arc::new(ts)))
                        .map_err(|e| fail(e.to_string()))
                }
                other => Err(fail(format!("expects tensors, got {}", kind_of(other)))),
            },
            (NodeOp::Onnx(model), NodeState::Native) => {
                let mut offered: Vec<&Tensor> = Vec::new();
                for (name, value) in &inputs {
                    match value {
                        Value::Tensors(ts) => offered.extend(ts.iter()),
                        other => {
                            return Err(fail(format!(
                                "input '{name}' is {}, not tensors",
                                other.kind()
                            )))
                        }
                    }
                }
                model
                    .run(&offered, alone)
                    .map(|ts| Value::Tensors(Arc::new(ts)))
                    .map_err(|e| fail(e.to_string()))
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
                let result = instance.process(&inputs);
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
