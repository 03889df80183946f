//! Loading every manifest in the pipelines directory into ready-to-run plans.
//!
//! A pipeline that fails any load-time check stays listed, with its reason,
//! and refuses connects with `invalid_pipeline` and that reason: an operator
//! sees what is wrong in `/pipelines` and the logs, and the good pipelines keep
//! serving. The checks are, in order: the manifest parses; the DAG is sound;
//! each node's kind exists and its config fits it; each Wasm component
//! compiles and matches our WIT world (compiled once per file even if several
//! nodes or pipelines use it); and each Wasm node is instantiated once with
//! its config, so a config the node itself rejects fails at load, not on the
//! first frame. A pipeline whose `onnx` nodes name an `int8_model` is planned
//! twice where int8 may run, and the int8 plan serves only if the int8 gate
//! ([`super::int8_gate`]) finds its answers unchanged; which runs, and why,
//! is logged and shown in `/pipelines`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::dag::{Dag, Edge, Source};
use super::int8_gate::{self, GateSettings};
use super::manifest::{Manifest, NodeManifest, FRAME_INPUT, MAX_MANIFEST_BYTES};
use crate::nodes::argmax::ArgmaxConfig;
use crate::nodes::jpeg_decode::JpegDecodeConfig;
use crate::nodes::onnx::{OnnxModel, OnnxSizing};
use crate::nodes::text_crop::TextCropConfig;
use crate::nodes::to_tensor::ToTensorConfig;
use crate::wasm::instance::LogContext;
use crate::wasm::{InstanceLimits, NodeComponent, NodeInstance, WasmEngine};

/// What a node does.
pub enum NodeOp {
    JpegDecode(JpegDecodeConfig),
    ToTensor(ToTensorConfig),
    TextCrop(TextCropConfig),
    Argmax(ArgmaxConfig),
    Onnx(Arc<OnnxModel>),
    Wasm {
        component: Arc<NodeComponent>,
        config_json: String,
        /// What the manifest asked for (`memory_mb`, `timeout_ms`); `None` fields take the ceiling.
        asks: NodeAsks,
    },
}

/// A Wasm node's own limits, as its manifest asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeAsks {
    pub memory_bytes: Option<usize>,
    pub call_timeout: Option<Duration>,
}

impl NodeAsks {
    /// The limits a node runs under given a ceiling (the server's, or a
    /// tenant's quota), or why it cannot run under it.
    pub fn within(&self, ceiling: InstanceLimits) -> Result<InstanceLimits, String> {
        if let Some(m) = self.memory_bytes.filter(|m| *m > ceiling.memory_bytes) {
            return Err(format!(
                "asks for {} MiB of Wasm memory, over the {} MiB allowed",
                m >> 20,
                ceiling.memory_bytes >> 20
            ));
        }
        if let Some(t) = self.call_timeout.filter(|t| *t > ceiling.call_timeout) {
            return Err(format!(
                "asks for {} ms per call, over the {} ms allowed",
                t.as_millis(),
                ceiling.call_timeout.as_millis()
            ));
        }
        Ok(InstanceLimits {
            memory_bytes: self.memory_bytes.unwrap_or(ceiling.memory_bytes),
            call_timeout: self.call_timeout.unwrap_or(ceiling.call_timeout),
        })
    }
}

pub struct PlannedNode {
    pub id: String,
    pub op: NodeOp,
}

/// A pipeline that passed every check: what a session executes.
pub struct Plan {
    pub id: String,
    pub nodes: Vec<PlannedNode>,
    pub dag: Dag,
}

impl Plan {
    /// Each node's instance limits under `ceiling` (a tenant's quotas), in
    /// node order; an error names the first node that asks for more.
    pub fn instance_limits(&self, ceiling: InstanceLimits) -> Result<Vec<InstanceLimits>, String> {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                NodeOp::Wasm { asks, .. } => asks
                    .within(ceiling)
                    .map_err(|e| format!("node '{}' {e}", n.id)),
                _ => Ok(ceiling),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum PipelineStatus {
    Ready,
    Failed(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    pub id: String,
    pub kind: String,
    pub inputs: Vec<String>,
}

/// For a pipeline with int8 model variants: whether they run, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Int8Status {
    pub runs: bool,
    pub reason: String,
}

/// A listed pipeline, ready or not.
pub struct Pipeline {
    pub id: String,
    pub description: String,
    pub source: PathBuf,
    pub nodes: Vec<NodeSummary>,
    pub status: PipelineStatus,
    pub plan: Option<Arc<Plan>>,
    /// `None` when no node names an `int8_model`.
    pub int8: Option<Int8Status>,
}

/// The native node kinds and `wasm`.
pub const KINDS: &[&str] = &[
    "jpeg_decode",
    "to_tensor",
    "text_crop",
    "argmax",
    "onnx",
    "wasm",
];

/// Where a pipeline's files come from and how models are sized.
#[derive(Debug, Clone)]
pub struct LoadContext {
    pub plugin_dir: PathBuf,
    pub model_dir: PathBuf,
    pub ort_lib: PathBuf,
    pub onnx: OnnxSizing,
    /// Whether an `onnx` node's `int8_model` runs instead of its `model`.
    pub int8: Int8Choice,
}

/// When int8 variants replace their models (`config::Int8Resolved`, with the gate's settings).
#[derive(Debug, Clone)]
pub enum Int8Choice {
    /// Never, and why.
    Never(&'static str),
    /// Where the int8 gate finds the pipeline's answers unchanged.
    Gated(Arc<GateSettings>),
    /// Always, unchecked.
    Forced,
}

pub struct PipelineRegistry {
    pipelines: BTreeMap<String, Arc<Pipeline>>,
}

/// Why a connect to a pipeline id is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LookupError {
    #[error("Missing pipeline_id")]
    Missing,
    #[error("Unknown pipeline_id '{0}'")]
    Unknown(String),
    #[error("Pipeline '{id}' failed its load check: {reason}")]
    Failed { id: String, reason: String },
}

impl PipelineRegistry {
    /// Loads every `*.toml` in `dir` (sorted by name; a later duplicate id fails).
    pub fn load_dir(
        dir: &Path,
        ctx: &LoadContext,
        engine: &Arc<WasmEngine>,
    ) -> std::io::Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut loader = Loader {
            ctx,
            engine,
            compiled: HashMap::new(),
            models: HashMap::new(),
            int8: false,
        };
        let mut pipelines = BTreeMap::new();
        for file in files {
            let mut pipeline = loader.load_file(&file);
            if pipelines.contains_key(&pipeline.id) {
                let first = pipeline.id.clone();
                pipeline.status = PipelineStatus::Failed(format!(
                    "pipeline id '{first}' is already defined by another manifest"
                ));
                pipeline.plan = None;
                pipeline.id = format!("{first}@{}", file.display());
            }
            if let Some(int8) = &pipeline.int8 {
                tracing::info!(pipeline_id = %pipeline.id, int8_models = int8.runs, reason = %int8.reason, "int8 models");
            }
            match &pipeline.status {
                PipelineStatus::Ready => {
                    tracing::info!(pipeline_id = %pipeline.id, nodes = pipeline.nodes.len(), "pipeline loaded")
                }
                PipelineStatus::Failed(reason) => {
                    tracing::error!(pipeline_id = %pipeline.id, file = %file.display(), %reason, "pipeline failed its load check")
                }
            }
            pipelines.insert(pipeline.id.clone(), Arc::new(pipeline));
        }
        Ok(PipelineRegistry { pipelines })
    }

    pub fn lookup(&self, id: Option<&str>) -> Result<Arc<Plan>, LookupError> {
        let id = id.filter(|s| !s.is_empty()).ok_or(LookupError::Missing)?;
        let p = self
            .pipelines
            .get(id)
            .ok_or_else(|| LookupError::Unknown(truncate(id, 64)))?;
        match (&p.status, &p.plan) {
            (PipelineStatus::Ready, Some(plan)) => Ok(plan.clone()),
            (PipelineStatus::Failed(reason), _) => Err(LookupError::Failed {
                id: id.to_string(),
                reason: reason.clone(),
            }),
            (PipelineStatus::Ready, None) => Err(LookupError::Failed {
                id: id.to_string(),
                reason: "no plan".into(),
            }),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Pipeline>> {
        self.pipelines.values()
    }

    pub fn len(&self) -> usize {
        self.pipelines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }

    pub fn ready_count(&self) -> usize {
        self.pipelines
            .values()
            .filter(|p| p.status == PipelineStatus::Ready)
            .count()
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

struct Loader<'a> {
    ctx: &'a LoadContext,
    engine: &'a Arc<WasmEngine>,
    compiled: HashMap<PathBuf, Result<Arc<NodeComponent>, String>>,
    models: HashMap<PathBuf, Result<Arc<OnnxModel>, String>>,
    /// Whether the plan being made loads `int8_model`s instead of models.
    int8: bool,
}

/// Parses a node's TOML config table into its typed config.
pub(crate) fn typed_config<T: serde::de::DeserializeOwned>(
    config: &toml::Table,
) -> Result<T, String> {
    toml::Value::Table(config.clone())
        .try_into()
        .map_err(|e: toml::de::Error| format!("bad config: {}", e.message()))
}

impl Loader<'_> {
    fn load_file(&mut self, file: &Path) -> Pipeline {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let failed = |id: String, reason: String| Pipeline {
            id,
            description: String::new(),
            source: file.to_path_buf(),
            nodes: Vec::new(),
            status: PipelineStatus::Failed(reason),
            plan: None,
            int8: None,
        };
        let text = match read_capped(file) {
            Ok(t) => t,
            Err(e) => return failed(stem, e),
        };
        let manifest = match Manifest::parse(&text) {
            Ok(m) => m,
            Err(e) => return failed(stem, e.to_string()),
        };
        let nodes = manifest
            .nodes
            .iter()
            .map(|n| NodeSummary {
                id: n.id.clone(),
                kind: n.kind.clone(),
                // Show the effective inputs: none listed means the client's frame.
                inputs: if n.inputs.is_empty() {
                    vec![FRAME_INPUT.to_string()]
                } else {
                    n.inputs.clone()
                },
            })
            .collect();
        let (status, plan, int8) = match self.plan_choosing_models(&manifest, &text) {
            Ok((plan, int8)) => (PipelineStatus::Ready, Some(plan), int8),
            Err(reason) => (PipelineStatus::Failed(reason), None, None),
        };
        Pipeline {
            id: manifest.id,
            description: manifest.description,
            source: file.to_path_buf(),
            nodes,
            status,
            plan,
            int8,
        }
    }

    /// Plans `m` with its fp32 models, or with its int8 variants where
    /// `ctx.int8` lets them run (through the gate unless forced).
    fn plan_choosing_models(
        &mut self,
        m: &Manifest,
        text: &str,
    ) -> Result<(Arc<Plan>, Option<Int8Status>), String> {
        let has_variants = m
            .nodes
            .iter()
            .any(|n| n.kind == "onnx" && n.config.contains_key("int8_model"));
        let status = |runs: bool, reason: String| Some(Int8Status { runs, reason });
        let ctx = self.ctx;
        let fp32 = |this: &mut Self| this.plan_with(m, false).map(Arc::new);
        match (&ctx.int8, has_variants) {
            (_, false) => Ok((fp32(self)?, None)),
            (Int8Choice::Never(why), true) => Ok((fp32(self)?, status(false, why.to_string()))),
            (Int8Choice::Forced, true) => {
                let plan = self.plan_with(m, true).map(Arc::new)?;
                Ok((
                    plan,
                    status(true, "STREAMHOST_INT8_MODELS=force: unchecked".into()),
                ))
            }
            (Int8Choice::Gated(gate), true) => {
                let reference = fp32(self)?;
                let candidate = match self.plan_with(m, true) {
                    Ok(plan) => Arc::new(plan),
                    Err(e) => {
                        let why = format!("the int8 plan does not load: {e}");
                        return Ok((reference, status(false, why)));
                    }
                };
                tracing::info!(pipeline_id = %m.id, frames = %gate.frames_dir.display(), "int8 gate: comparing the int8 and fp32 plans (cached after the first start)");
                match int8_gate::judge(gate, self.engine, text, &reference, &candidate) {
                    Ok(v) if v.exact => Ok((candidate, status(true, v.reason))),
                    Ok(v) => Ok((reference, status(false, v.reason))),
                    Err(e) => Ok((reference, status(false, e.to_string()))),
                }
            }
        }
    }

    fn plan_with(&mut self, m: &Manifest, int8: bool) -> Result<Plan, String> {
        self.int8 = int8;
        self.plan(m)
    }

    fn plan(&mut self, m: &Manifest) -> Result<Plan, String> {
        let dag = Dag::build(m).map_err(|e| e.to_string())?;
        // Native and model nodes first, so Wasm nodes can take model metadata.
        let mut ops: Vec<Option<NodeOp>> = Vec::with_capacity(m.nodes.len());
        for (i, n) in m.nodes.iter().enumerate() {
            let op = if n.kind == "wasm" {
                None
            } else {
                Some(
                    self.native_op(n, &dag.inputs[i])
                        .map_err(|e| format!("node '{}': {e}", n.id))?,
                )
            };
            ops.push(op);
        }
        for (i, n) in m.nodes.iter().enumerate() {
            if n.kind != "wasm" {
                continue;
            }
            let op = self
                .wasm_op(n, &dag.inputs[i], m, &ops)
                .map_err(|e| format!("node '{}': {e}", n.id))?;
            if let NodeOp::Wasm {
                component,
                config_json,
                asks,
            } = &op
            {
                let limits = asks
                    .within(self.engine.limits().instance_limits())
                    .map_err(|e| format!("node '{}' {e}", n.id))?;
                let log = LogContext {
                    session_id: "load-check".into(),
                    pipeline_id: m.id.clone(),
                    node_id: n.id.clone(),
                };
                NodeInstance::start(self.engine, component, config_json, limits, log)
                    .map_err(|e| format!("node '{}' {e}", n.id))?;
            }
            ops[i] = Some(op);
        }
        let nodes = m
            .nodes
            .iter()
            .zip(ops)
            .map(|(n, op)| {
                op.map(|op| PlannedNode {
                    id: n.id.clone(),
                    op,
                })
                .ok_or_else(|| format!("node '{}' was not planned", n.id))
            })
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            id: m.id.clone(),
            nodes,
            dag,
        })
    }

    fn native_op(&mut self, n: &NodeManifest, inputs: &[Edge]) -> Result<NodeOp, String> {
        if !KINDS.contains(&n.kind.as_str()) {
            return Err(format!(
                "unknown kind '{}' (known kinds: {})",
                n.kind,
                KINDS.join(", ")
            ));
        }
        if n.component.is_some() {
            return Err(format!("{} takes no component", n.kind));
        }
        if !n.metadata.is_empty() {
            return Err("only wasm nodes take `metadata`".into());
        }
        let from_frame = inputs.iter().any(|e| e.source == Source::Frame);
        if n.kind != "jpeg_decode" && from_frame {
            return Err(format!(
                "{} cannot take the raw frame; decode it first with a jpeg_decode node",
                n.kind
            ));
        }
        match n.kind.as_str() {
            "jpeg_decode" => {
                if !(from_frame && inputs.len() == 1) {
                    return Err("jpeg_decode takes exactly one input, the client's frame".into());
                }
                Ok(NodeOp::JpegDecode(typed_config(&n.config)?))
            }
            "to_tensor" => {
                if inputs.len() != 1 {
                    return Err("to_tensor takes exactly one input, an image".into());
                }
                let config: ToTensorConfig = typed_config(&n.config)?;
                config.validate()?;
                Ok(NodeOp::ToTensor(config))
            }
            "text_crop" => {
                if inputs.len() != 2 {
                    return Err("text_crop takes two inputs: the image, then the boxes".into());
                }
                let config: TextCropConfig = typed_config(&n.config)?;
                config.validate()?;
                Ok(NodeOp::TextCrop(config))
            }
            "argmax" => {
                if inputs.len() != 1 {
                    return Err("argmax takes exactly one input, a tensor list".into());
                }
                Ok(NodeOp::Argmax(typed_config(&n.config)?))
            }
            "onnx" => {
                if inputs.is_empty() {
                    return Err("onnx needs at least one input".into());
                }
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct OnnxConfig {
                    model: String,
                    /// An int8-quantised variant for CPUs whose int8 kernels pay.
                    #[serde(default)]
                    int8_model: Option<String>,
                }
                let cfg: OnnxConfig = typed_config(&n.config)?;
                let file = match cfg.int8_model {
                    Some(int8) if self.int8 => int8,
                    _ => cfg.model,
                };
                Ok(NodeOp::Onnx(self.model(&self.ctx.model_dir.join(file))?))
            }
            other => Err(format!(
                "unknown kind '{other}' (known kinds: {})",
                KINDS.join(", ")
            )),
        }
    }

    fn wasm_op(
        &mut self,
        n: &NodeManifest,
        inputs: &[Edge],
        m: &Manifest,
        ops: &[Option<NodeOp>],
    ) -> Result<NodeOp, String> {
        if inputs.iter().any(|e| e.source == Source::Frame) {
            return Err(
                "a wasm node cannot take the raw frame; decode it first with a jpeg_decode node"
                    .into(),
            );
        }
        let rel = n
            .component
            .as_deref()
            .ok_or("a wasm node needs `component = \"file.wasm\"`")?;
        let component = self.component(&self.ctx.plugin_dir.join(rel))?;
        let mut config = n.config.clone();
        for (key, reference) in &n.metadata {
            let (node, meta_key) = reference.split_once('.').ok_or_else(|| {
                format!("metadata '{key}' must be \"node.key\", got '{reference}'")
            })?;
            let j = m
                .nodes
                .iter()
                .position(|x| x.id == node)
                .ok_or_else(|| format!("metadata '{key}' names unknown node '{node}'"))?;
            let Some(Some(NodeOp::Onnx(model))) = ops.get(j) else {
                return Err(format!(
                    "metadata '{key}' names '{node}', which is not an onnx node"
                ));
            };
            let value = model.metadata(meta_key).ok_or_else(|| {
                format!("model of node '{node}' has no metadata key '{meta_key}'")
            })?;
            config.insert(key.clone(), toml::Value::String(value.to_string()));
        }
        let config_json = serde_json::to_string(&config)
            .map_err(|e| format!("config cannot be passed as JSON: {e}"))?;
        let asks = NodeAsks {
            memory_bytes: n.memory_mb.map(|mb| (mb as usize).saturating_mul(1 << 20)),
            call_timeout: n.timeout_ms.map(Duration::from_millis),
        };
        if asks.memory_bytes == Some(0) || asks.call_timeout == Some(Duration::ZERO) {
            return Err("memory_mb and timeout_ms must be at least 1".into());
        }
        Ok(NodeOp::Wasm {
            component,
            config_json,
            asks,
        })
    }

    fn component(&mut self, path: &Path) -> Result<Arc<NodeComponent>, String> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.compiled
            .entry(key)
            .or_insert_with(|| {
                NodeComponent::load(self.engine, path)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    fn model(&mut self, path: &Path) -> Result<Arc<OnnxModel>, String> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let ctx = self.ctx;
        self.models
            .entry(key)
            .or_insert_with(|| {
                OnnxModel::load(&ctx.ort_lib, path, ctx.onnx)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

fn read_capped(file: &Path) -> Result<String, String> {
    let len = std::fs::metadata(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?
        .len();
    if len > MAX_MANIFEST_BYTES as u64 {
        return Err(format!(
            "manifest is {len} bytes, over the {MAX_MANIFEST_BYTES} byte limit"
        ));
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}
