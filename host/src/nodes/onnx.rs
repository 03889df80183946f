//! The ONNX Runtime stage (`kind = "onnx"`): heavy models run natively.
//!
//! The runtime library is loaded once per process from a path (ort's
//! `load-dynamic`), so a missing library fails the pipelines that need it at
//! load time with a clear reason instead of aborting the process. Each model
//! is opened once, when its pipeline loads, as a small pool of sessions:
//! `Session::run` needs exclusive access, so a pool lets frames of different
//! WebSocket sessions run the same model at once; a frame takes the first
//! idle session and waits for one only when all are busy. By default the pool
//! is two-speed: one *solo* session with an intra-op thread per core, which a
//! frame takes when it is the only one executing (the latency of a lone
//! stream), and single-thread sessions for frames that run concurrently (each
//! already has a core of its own, and more threads would only oversubscribe
//! them: see `pipeline::occupancy`). `STREAMHOST_ONNX_THREADS=N` instead gives
//! every session N threads and no solo session; `STREAMHOST_ONNX_SESSIONS`
//! sizes the pool. Spinning is off so idle pool threads do not burn the cores
//! that other sessions need. The intra-op thread count changes how the work
//! is shared out; it may move the last bits of a float, not what a decoder
//! reads from it (tested on the recogniser).
//!
//! Inputs are matched to the model's inputs by tensor name; a single-input
//! model takes the one tensor offered to it when no name matches. An input
//! with a zero-sized batch (a frame with no text lines, say) skips the run
//! and yields no tensors, which downstream nodes treat as "nothing found".
//! Several tensors of one name for a single-input model are a ragged batch:
//! one run each, outputs in the same order (see [`OnnxModel::run`]).
//!
//! Every node call runs under its own `RunOptions`, registered with the
//! frame's [`FrameDeadline`] for as long as it runs: when the deadline passes
//! or the session closes, the token calls `RunOptions::terminate()` from the
//! watcher's thread and ONNX Runtime stops the graph at its next kernel. The
//! flag stays set, so the rest of a ragged batch stops at once too. The
//! session itself is untouched and serves the next frame.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, TensorRef};

use super::{typed_config, NodeFailure, RunContext};
use crate::config::{resolve_cores, Config, MAX_RAGGED_RUNS};
use crate::deadline::{FrameDeadline, Interrupt};
use crate::value::{Tensor, TensorData, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OnnxError {
    #[error("ONNX Runtime library {path} could not be loaded: {reason} (run `make models`)")]
    Library { path: PathBuf, reason: String },
    #[error("model {path} could not be opened: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("{0}")]
    Run(String),
}

static ENVIRONMENT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();

/// Loads the runtime library once per process (a library cannot be loaded
/// twice); a missing file is reported without being remembered, so a later
/// load with the right path still works.
fn environment(lib: &Path) -> Result<&'static Environment, OnnxError> {
    if !lib.exists() {
        return Err(OnnxError::Library {
            path: lib.to_path_buf(),
            reason: "file not found".into(),
        });
    }
    ENVIRONMENT
        .get_or_init(|| {
            let fail = |reason: String| OnnxError::Library {
                path: lib.to_path_buf(),
                reason,
            };
            ort::init_from(lib)
                .map_err(|e| fail(e.to_string()))?
                .with_name("streamhost")
                .build()
                .map_err(|e| fail(e.to_string()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl Clone for OnnxError {
    fn clone(&self) -> Self {
        match self {
            OnnxError::Library { path, reason } => OnnxError::Library {
                path: path.clone(),
                reason: reason.clone(),
            },
            OnnxError::Model { path, reason } => OnnxError::Model {
                path: path.clone(),
                reason: reason.clone(),
            },
            OnnxError::Run(r) => OnnxError::Run(r.clone()),
        }
    }
}

/// How sessions are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnnxSizing {
    /// Intra-op threads of each pooled session.
    pub intra_threads: usize,
    /// Pooled sessions: frames that can run the model at once.
    pub sessions: usize,
    /// Intra-op threads of the extra session a frame executing alone takes;
    /// `None`: no such session.
    pub solo_threads: Option<usize>,
}

impl OnnxSizing {
    /// How each model's sessions are sized under `config`.
    /// `STREAMHOST_ONNX_THREADS=0`: single-thread pooled sessions, plus (with
    /// more than one core) a solo session with a thread per core for a frame
    /// executing alone; `N`: every session N threads, no solo session. The
    /// pool has `STREAMHOST_ONNX_SESSIONS` sessions (0: one per core). Here,
    /// beside the sessions it sizes, so that `config` stays a leaf.
    pub fn from_config(config: &Config) -> Self {
        let sessions = resolve_cores(config.onnx_sessions);
        match config.onnx_threads {
            0 => {
                let cores = resolve_cores(0);
                OnnxSizing {
                    intra_threads: 1,
                    sessions,
                    solo_threads: (cores > 1).then_some(cores),
                }
            }
            n => OnnxSizing {
                intra_threads: n,
                sessions,
                solo_threads: None,
            },
        }
    }
}

/// One model, opened as a pool of sessions.
pub struct OnnxModel {
    path: PathBuf,
    /// For a frame executing alone (see [`OnnxSizing::solo_threads`]).
    solo: Option<Mutex<Session>>,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    input_names: Vec<String>,
    output_names: Vec<String>,
    metadata: HashMap<String, String>,
}

impl OnnxModel {
    pub fn load(lib: &Path, path: &Path, sizing: OnnxSizing) -> Result<Self, OnnxError> {
        let env = environment(lib)?;
        let fail = |reason: String| OnnxError::Model {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(fail("file not found (run `make models`)".into()));
        }
        let open = |threads: usize| -> Result<Mutex<Session>, OnnxError> {
            Session::builder(env)
                .map_err(|e| fail(e.to_string()))?
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(|e| fail(e.to_string()))?
                .with_intra_threads(threads.max(1))
                .map_err(|e| fail(e.to_string()))?
                .with_inter_threads(1)
                .map_err(|e| fail(e.to_string()))?
                .with_intra_op_spinning(false)
                .map_err(|e| fail(e.to_string()))?
                .commit_from_file(path)
                .map(Mutex::new)
                .map_err(|e| fail(e.to_string()))
        };
        let sessions = (0..sizing.sessions.max(1))
            .map(|_| open(sizing.intra_threads))
            .collect::<Result<Vec<_>, _>>()?;
        let solo = sizing.solo_threads.map(open).transpose()?;
        let first = sessions.first().ok_or_else(|| fail("no session".into()))?;
        let (input_names, output_names, metadata) = {
            let s = first
                .lock()
                .map_err(|_| fail("session lock poisoned".into()))?;
            let inputs = s.inputs().iter().map(|o| o.name().to_string()).collect();
            let outputs = s.outputs().iter().map(|o| o.name().to_string()).collect();
            let mut metadata = HashMap::new();
            if let Ok(meta) = s.metadata() {
                for key in meta.custom_keys().unwrap_or_default() {
                    if let Some(value) = meta.custom(&key) {
                        metadata.insert(key, value);
                    }
                }
            }
            (inputs, outputs, metadata)
        };
        Ok(OnnxModel {
            path: path.to_path_buf(),
            solo,
            sessions,
            next: AtomicUsize::new(0),
            input_names,
            output_names,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// A custom metadata value of the model (e.g. a recognizer's `character` list).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Runs the model on `offered` tensors; returns its outputs, named.
    /// `alone`: the frame is the only one executing, so it may take the solo
    /// session (when the model has one and it is free). A single-input model
    /// offered several tensors of one name (a ragged batch, such as text crops
    /// each at its own width) runs once per tensor, in order, and returns each
    /// run's outputs in that order; parts with a zero-sized dimension are skipped.
    /// Cancelling `deadline` terminates the run in progress.
    pub fn run(
        &self,
        offered: &[&Tensor],
        alone: bool,
        deadline: &FrameDeadline,
    ) -> Result<Vec<Tensor>, OnnxError> {
        let runs: Vec<Vec<&Tensor>> = self
            .bind_inputs(offered)?
            .into_iter()
            .filter(|chosen| !chosen.iter().any(|t| t.shape.contains(&0)))
            .collect();
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let options = RunOptions::new()
            .map(|o| Arc::new(Terminate(o)))
            .map_err(|e| OnnxError::Run(format!("run options: {e}")))?;
        let _registered = deadline.on_cancel(options.clone());
        let mut session = self.acquire(alone)?;
        let mut result = Vec::with_capacity(runs.len() * self.output_names.len());
        for chosen in runs {
            self.run_once(&mut session, &chosen, &options.0, &mut result)?;
        }
        Ok(result)
    }

    /// One `Session::run` on `chosen` (the model's inputs in order); its
    /// outputs are appended to `result`.
    fn run_once(
        &self,
        session: &mut Session,
        chosen: &[&Tensor],
        options: &RunOptions,
        result: &mut Vec<Tensor>,
    ) -> Result<(), OnnxError> {
        let mut inputs = Vec::with_capacity(chosen.len());
        for (name, t) in self.input_names.iter().zip(chosen) {
            let shape: Vec<i64> = t.shape.iter().map(|&d| i64::from(d)).collect();
            let bad = |e: ort::Error| OnnxError::Run(format!("input '{name}': {e}"));
            let value = match &t.data {
                TensorData::F32(v) => SessionInputValue::from(
                    TensorRef::from_array_view((shape, (**v).as_ref())).map_err(bad)?,
                ),
                TensorData::U8(v) => SessionInputValue::from(
                    TensorRef::from_array_view((shape, (**v).as_ref())).map_err(bad)?,
                ),
                TensorData::I64(v) => SessionInputValue::from(
                    TensorRef::from_array_view((shape, (**v).as_ref())).map_err(bad)?,
                ),
            };
            inputs.push((std::borrow::Cow::from(name.as_str()), value));
        }
        let outputs = session
            .run_with_options(inputs, options)
            .map_err(|e| OnnxError::Run(e.to_string()))?;
        for (name, value) in outputs {
            let (shape, data) = OrtOutput::shape_and_data(value).map_err(|e| {
                OnnxError::Run(format!(
                    "output '{name}' is not an f32, u8 or i64 tensor: {e}"
                ))
            })?;
            result.push(Tensor {
                name: name.to_string(),
                shape,
                data,
            });
        }
        Ok(())
    }

    /// The runs to make: for each, the offered tensor of every model input in
    /// order. One run, except a ragged batch for a single-input model.
    fn bind_inputs<'a>(&self, offered: &[&'a Tensor]) -> Result<Vec<Vec<&'a Tensor>>, OnnxError> {
        let named = |name: &str| -> Vec<&'a Tensor> {
            offered.iter().filter(|t| t.name == name).copied().collect()
        };
        if let [only_input] = self.input_names.as_slice() {
            let mut parts = named(only_input);
            if parts.is_empty() {
                // The model's input under another name: the one name offered besides `meta`.
                let others: Vec<&'a Tensor> = offered
                    .iter()
                    .filter(|t| t.name != "meta")
                    .copied()
                    .collect();
                if others
                    .first()
                    .is_some_and(|first| others.iter().all(|t| t.name == first.name))
                {
                    parts = others;
                }
            }
            if parts.is_empty() {
                return Err(OnnxError::Run(format!(
                    "model input '{only_input}' matches none of the offered tensors {:?}",
                    offered.iter().map(|t| &t.name).collect::<Vec<_>>()
                )));
            }
            if parts.len() > MAX_RAGGED_RUNS {
                return Err(OnnxError::Run(format!(
                    "a ragged batch of {} tensors named '{only_input}' is over the {MAX_RAGGED_RUNS} runs a frame may make",
                    parts.len()
                )));
            }
            return Ok(parts.into_iter().map(|t| vec![t]).collect());
        }
        let chosen = self
            .input_names
            .iter()
            .map(|name| match named(name).as_slice() {
                [one] => Ok(*one),
                [] => Err(OnnxError::Run(format!(
                    "no tensor named '{name}' among the inputs"
                ))),
                several => Err(OnnxError::Run(format!(
                    "{} tensors named '{name}': a ragged batch needs a single-input model",
                    several.len()
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![chosen])
    }

    fn acquire(&self, alone: bool) -> Result<MutexGuard<'_, Session>, OnnxError> {
        pick(self.solo.as_ref(), &self.sessions, &self.next, alone)
    }
}

/// A node call's run options, which a cancelled frame terminates.
struct Terminate(RunOptions);

impl Interrupt for Terminate {
    fn interrupt(&self) {
        if let Err(e) = self.0.terminate() {
            tracing::warn!(error = %e, "an ONNX run could not be told to stop");
        }
    }
}

/// A model output left in the buffer ONNX Runtime wrote it to (the value
/// keeps its allocator alive, so the session may run again meanwhile): the
/// recogniser's outputs are megabytes a run, and copying them out cost more
/// than the argmax that reads them.
struct OrtOutput(DynValue);

impl OrtOutput {
    /// The output's shape and values: an f32 tensor stays where ONNX
    /// Runtime wrote it; a u8 or i64 one (rare, small: class ids, counts) is
    /// copied out.
    fn shape_and_data(value: DynValue) -> Result<(Vec<u32>, TensorData), ort::Error> {
        let dims = |shape: &ort::value::Shape| -> Vec<u32> {
            shape
                .iter()
                .map(|&d| u32::try_from(d).unwrap_or(0))
                .collect()
        };
        if let Ok((shape, _)) = value.try_extract_tensor::<f32>() {
            let shape = dims(shape);
            return Ok((shape, TensorData::new(OrtOutput(value))));
        }
        if let Ok((shape, data)) = value.try_extract_tensor::<i64>() {
            return Ok((dims(shape), data.to_vec().into()));
        }
        let (shape, data) = value.try_extract_tensor::<u8>()?;
        Ok((dims(shape), data.to_vec().into()))
    }
}

impl AsRef<[f32]> for OrtOutput {
    fn as_ref(&self) -> &[f32] {
        // Checked in `shape_and_data`; the value is never replaced or mutated.
        self.0
            .try_extract_tensor::<f32>()
            .map(|(_, data)| data)
            .unwrap_or(&[])
    }
}

/// The session a run takes: the solo one for a frame alone if it is free,
/// else the first idle pooled one, else (all busy) the next pooled one in
/// turn, waiting for it. Generic so the policy is tested without a model.
fn pick<'a, S>(
    solo: Option<&'a Mutex<S>>,
    pool: &'a [Mutex<S>],
    next: &AtomicUsize,
    alone: bool,
) -> Result<MutexGuard<'a, S>, OnnxError> {
    let solo = solo.filter(|_| alone);
    for s in solo.into_iter().chain(pool) {
        if let Ok(guard) = s.try_lock() {
            return Ok(guard);
        }
    }
    let i = next.fetch_add(1, Ordering::Relaxed) % pool.len().max(1);
    pool.get(i)
        .ok_or_else(|| OnnxError::Run("no session".into()))?
        .lock()
        .map_err(|_| OnnxError::Run("session lock poisoned".into()))
}

// The node's part in `nodes::NativeKind` / `NativeNode`: inputs, config, run.

/// An `onnx` node's config: the model file, relative to the model directory,
/// and optionally an int8-quantised variant (see `pipeline::int8_gate`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxConfig {
    pub model: String,
    /// An int8-quantised variant for CPUs whose int8 kernels pay.
    #[serde(default)]
    pub int8_model: Option<String>,
}

impl OnnxConfig {
    /// The file to open: the int8 variant when `int8` and there is one.
    pub fn model_file(&self, int8: bool) -> &str {
        match &self.int8_model {
            Some(file) if int8 => file,
            _ => &self.model,
        }
    }
}

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if inputs == 0 {
        return Err("onnx needs at least one input".into());
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<OnnxConfig, String> {
    typed_config(table)
}

/// Runs the model on every tensor of its inputs (see [`OnnxModel::run`]).
pub(super) fn run(
    model: &OnnxModel,
    inputs: &[(String, Value)],
    ctx: RunContext<'_>,
) -> Result<Value, NodeFailure> {
    let mut offered: Vec<&Tensor> = Vec::new();
    for (name, value) in inputs {
        match value {
            Value::Tensors(ts) => offered.extend(ts.iter()),
            other => {
                return Err(NodeFailure::Node(format!(
                    "input '{name}' is {}, not tensors",
                    other.kind()
                )))
            }
        }
    }
    model
        .run(&offered, ctx.alone, ctx.deadline)
        .map(|ts| Value::Tensors(Arc::new(ts)))
        .map_err(|e| NodeFailure::Node(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_sessions_are_two_speed_by_default_and_fixed_when_set() {
        let cores = resolve_cores(0);
        let sized = |vars: &[(&str, &str)]| {
            let vars: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Config::from_lookup(move |k| vars.get(k).cloned()).map(|c| OnnxSizing::from_config(&c))
        };
        assert_eq!(
            sized(&[("STREAMHOST_ONNX_SESSIONS", "3")]),
            Ok(OnnxSizing {
                intra_threads: 1,
                sessions: 3,
                solo_threads: (cores > 1).then_some(cores),
            })
        );
        assert_eq!(
            sized(&[
                ("STREAMHOST_ONNX_THREADS", "2"),
                ("STREAMHOST_ONNX_SESSIONS", "1")
            ]),
            Ok(OnnxSizing {
                intra_threads: 2,
                sessions: 1,
                solo_threads: None,
            })
        );
    }

    #[test]
    fn a_missing_library_or_model_is_an_error_not_a_panic() {
        let sizing = OnnxSizing {
            intra_threads: 1,
            sessions: 1,
            solo_threads: Some(2),
        };
        let err = OnnxModel::load(
            Path::new("/nonexistent/libonnxruntime.so"),
            Path::new("m.onnx"),
            sizing,
        )
        .err();
        assert!(matches!(err, Some(OnnxError::Library { .. })), "{err:?}");
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("run `make models`"), "{msg}");
    }

    #[test]
    fn a_frame_alone_takes_the_solo_session_others_the_pool() {
        let solo = Mutex::new("solo");
        let pool = [Mutex::new("pool0"), Mutex::new("pool1")];
        let next = AtomicUsize::new(0);
        let take = |alone| pick(Some(&solo), &pool, &next, alone).map(|g| *g);
        assert_eq!(take(true), Ok("solo"));
        assert_eq!(take(false), Ok("pool0"));
        // The solo session busy: a frame alone falls back to the pool.
        let held = solo.lock();
        assert_eq!(take(true), Ok("pool0"));
        drop(held);
        // The first pooled session busy: the next idle one.
        let held = pool[0].lock();
        assert_eq!(take(false), Ok("pool1"));
        drop(held);
        // Without a solo session everything runs pooled.
        assert_eq!(pick(None, &pool, &next, true).map(|g| *g), Ok("pool0"));
    }
}
