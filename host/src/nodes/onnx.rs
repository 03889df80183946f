//! The ONNX Runtime stage (`kind = "onnx"`): heavy models run natively.
//!
//! The runtime library is loaded once per process from a path (ort's
//! `load-dynamic`), so a missing library fails the pipelines that need it at
//! load time with a clear reason instead of aborting the process. Each model
//! is opened once, when its pipeline loads, as a small pool of sessions:
//! `Session::run` needs exclusive access, so a pool lets frames of different
//! WebSocket sessions run the same model at once; a frame takes the first
//! idle session and waits for one only when all are busy. Intra-op threads
//! and the pool size default to the core count and are settable
//! (`STREAMHOST_ONNX_THREADS`, `STREAMHOST_ONNX_SESSIONS`); spinning is off
//! so idle pool threads do not burn the cores that other sessions need.
//!
//! Inputs are matched to the model's inputs by tensor name; a single-input
//! model takes the one tensor offered to it when no name matches. An input
//! with a zero-sized batch (a frame with no text lines, say) skips the run
//! and yields no tensors, which downstream nodes treat as "nothing found".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use crate::value::Tensor;

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
#[derive(Debug, Clone, Copy)]
pub struct OnnxSizing {
    pub intra_threads: usize,
    pub sessions: usize,
}

/// One model, opened as a pool of sessions.
pub struct OnnxModel {
    path: PathBuf,
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
        let mut sessions = Vec::with_capacity(sizing.sessions.max(1));
        for _ in 0..sizing.sessions.max(1) {
            let session = Session::builder(env)
                .map_err(|e| fail(e.to_string()))?
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(|e| fail(e.to_string()))?
                .with_intra_threads(sizing.intra_threads.max(1))
                .map_err(|e| fail(e.to_string()))?
                .with_inter_threads(1)
                .map_err(|e| fail(e.to_string()))?
                .with_intra_op_spinning(false)
                .map_err(|e| fail(e.to_string()))?
                .commit_from_file(path)
                .map_err(|e| fail(e.to_string()))?;
            sessions.push(Mutex::new(session));
        }
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
    pub fn run(&self, offered: &[&Tensor]) -> Result<Vec<Tensor>, OnnxError> {
        let chosen = self.bind_inputs(offered)?;
        if chosen.iter().any(|t| t.shape.contains(&0)) {
            return Ok(Vec::new());
        }
        let mut inputs = Vec::with_capacity(chosen.len());
        for (name, t) in self.input_names.iter().zip(&chosen) {
            let shape: Vec<i64> = t.shape.iter().map(|&d| i64::from(d)).collect();
            let view = TensorRef::from_array_view((shape, t.data.as_slice()))
                .map_err(|e| OnnxError::Run(format!("input '{name}': {e}")))?;
            inputs.push((
                std::borrow::Cow::from(name.as_str()),
                ort::session::SessionInputValue::from(view),
            ));
        }
        let mut session = self.acquire()?;
        let outputs = session
            .run(inputs)
            .map_err(|e| OnnxError::Run(e.to_string()))?;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, value) in outputs.iter() {
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| {
                OnnxError::Run(format!("output '{name}' is not an f32 tensor: {e}"))
            })?;
            let shape = shape
                .iter()
                .map(|&d| u32::try_from(d).unwrap_or(0))
                .collect();
            result.push(Tensor {
                name: name.to_string(),
                shape,
                data: Arc::new(data.to_vec()),
            });
        }
        Ok(result)
    }

    /// Picks the offered tensor for each model input.
    fn bind_inputs<'a>(&self, offered: &[&'a Tensor]) -> Result<Vec<&'a Tensor>, OnnxError> {
        if let [only_input] = self.input_names.as_slice() {
            let by_name = offered.iter().find(|t| &t.name == only_input);
            let candidates: Vec<&&Tensor> = offered.iter().filter(|t| t.name != "meta").collect();
            return match (by_name, candidates.as_slice()) {
                (Some(t), _) => Ok(vec![*t]),
                (None, [one]) => Ok(vec![**one]),
                _ => Err(OnnxError::Run(format!(
                    "model input '{only_input}' matches none of the offered tensors {:?}",
                    offered.iter().map(|t| &t.name).collect::<Vec<_>>()
                ))),
            };
        }
        self.input_names
            .iter()
            .map(|name| {
                offered
                    .iter()
                    .find(|t| &t.name == name)
                    .copied()
                    .ok_or_else(|| {
                        OnnxError::Run(format!("no tensor named '{name}' among the inputs"))
                    })
            })
            .collect()
    }

    /// The first idle session, else wait for the next in turn.
    fn acquire(&self) -> Result<std::sync::MutexGuard<'_, Session>, OnnxError> {
        for s in &self.sessions {
            if let Ok(guard) = s.try_lock() {
                return Ok(guard);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len().max(1);
        self.sessions
            .get(i)
            .ok_or_else(|| OnnxError::Run("no session".into()))?
            .lock()
            .map_err(|_| OnnxError::Run("session lock poisoned".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_or_model_is_an_error_not_a_panic() {
        let sizing = OnnxSizing {
            intra_threads: 1,
            sessions: 1,
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
}
