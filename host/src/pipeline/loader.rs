//! Planning a manifest and loading its parts: from a parsed [`Manifest`] to
//! a ready [`Plan`], or the reason it cannot be one.
//!
//! The loader checks what the manifest's shape ([`super::dag`]) cannot: each
//! node's kind exists and its config fits it; each Wasm component compiles
//! and matches our WIT world (compiled once per content even if several nodes
//! or pipelines use it); each model opens (once per content, too); and each Wasm
//! node is instantiated once with its config, so a config the node itself
//! rejects fails at load, not on the first frame. A pipeline whose `onnx`
//! nodes name an `int8_model` is planned twice where int8 may run, and the
//! int8 plan serves only if the int8 gate ([`super::int8_gate`]) finds its
//! answers unchanged. It knows nothing of the pipelines directory or of the
//! list of pipelines: that is [`super::reconcile`], which hands it one
//! manifest at a time with a [`LoadCache`] that outlives every load and
//! reload, so a component or model is compiled or opened once per content
//! whichever pipelines use it, and a reload of one manifest reuses what its
//! neighbours (and its own previous version) already compiled.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::cache::{Digest, LoadCache};
use super::dag::{Condition, Dag, Edge, Source};
use super::int8_gate::{self, GateSettings};
use super::manifest::{Manifest, NodeManifest, FRAME_INPUT};
use super::plan::{NodeAsks, NodeOp, Plan, PlannedNode};
use crate::kinds::{check_edge, Kind, Kinds, Signature};
use crate::nodes::onnx::{OnnxConfig, OnnxModel, OnnxSizing};
use crate::nodes::{typed_config, NativeKind, NativeNode};
use crate::wasm::instance::LogContext;
use crate::wasm::{NodeComponent, NodeInstance, WasmEngine};

/// Every kind a manifest may name: the native ones, then `wasm`.
fn known_kinds() -> String {
    let native = NativeKind::ALL.iter().map(|k| k.name());
    native.chain(["wasm"]).collect::<Vec<_>>().join(", ")
}

/// Every node's signature (what it declares, narrowed by its manifest
/// entry), once every edge is checked against them: each kind an input's
/// source may give must be one the node takes (see [`crate::kinds`]).
fn check_edges(m: &Manifest, dag: &Dag, ops: &[Option<NodeOp>]) -> Result<Vec<Signature>, String> {
    let signatures = m
        .nodes
        .iter()
        .zip(ops)
        .map(|(n, op)| {
            let declared = match op {
                Some(NodeOp::Native(node)) => node.kind().signature(),
                Some(NodeOp::Wasm { component, .. }) => component.signature(),
                None => Signature::UNDECLARED,
            };
            declared
                .narrowed(n.takes.as_deref(), n.gives.as_deref())
                .map_err(|e| format!("node '{}': {e}", n.id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, to) in signatures.iter().enumerate() {
        for edge in &dag.inputs[i] {
            let (from_id, gives, declared) = match edge.source {
                Source::Frame => (FRAME_INPUT, Kinds::of(&[Kind::Frame]), true),
                // `node.tensor` takes one tensor of that node's output.
                Source::Node(j) if edge.tensor.is_some() => {
                    (m.nodes[j].id.as_str(), Kinds::of(&[Kind::Tensors]), true)
                }
                Source::Node(j) => (
                    m.nodes[j].id.as_str(),
                    signatures[j].gives,
                    signatures[j].declared,
                ),
            };
            check_edge(from_id, gives, declared, &m.nodes[i].id, to)?;
        }
        // `when = "node.field"` reads a field of JSON or a tensor by name.
        if let Some(Condition {
            source,
            field: Some(field),
        }) = &dag.when[i]
        {
            let from = &signatures[*source];
            let readable = Kinds::of(&[Kind::Json, Kind::Tensors]);
            if from.declared && !from.gives.is_subset_of(readable) {
                return Err(format!(
                    "node '{}' has when = '{}.{field}', but '{}' gives {}: a field can be read only from json or tensors",
                    m.nodes[i].id,
                    m.nodes[*source].id,
                    m.nodes[*source].id,
                    from.gives
                ));
            }
        }
    }
    Ok(signatures)
}

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

/// For a pipeline with int8 model variants: whether they run, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Int8Status {
    pub runs: bool,
    pub reason: String,
}

/// Plans manifests, through a cache of what was compiled and opened before.
pub struct Loader<'a> {
    ctx: &'a LoadContext,
    engine: &'a Arc<WasmEngine>,
    cache: &'a mut LoadCache,
    /// Digests of the components and models the plans made so far use.
    used: HashSet<Digest>,
    /// Whether the plan being made loads `int8_model`s instead of models.
    int8: bool,
}

impl<'a> Loader<'a> {
    /// A loader drawing on (and filling) `cache`.
    pub fn new(
        ctx: &'a LoadContext,
        engine: &'a Arc<WasmEngine>,
        cache: &'a mut LoadCache,
    ) -> Self {
        Loader {
            ctx,
            engine,
            cache,
            used: HashSet::new(),
            int8: false,
        }
    }

    /// The digests of every component and model used since the last call:
    /// what the cache must keep while the plan serves.
    pub fn take_used(&mut self) -> HashSet<Digest> {
        std::mem::take(&mut self.used)
    }
}

impl Loader<'_> {
    /// Plans `m` with its fp32 models, or with its int8 variants where
    /// `ctx.int8` lets them run (through the gate unless forced).
    pub fn plan_choosing_models(
        &mut self,
        m: &Manifest,
        text: &str,
    ) -> Result<(Arc<Plan>, Option<Int8Status>), String> {
        let has_variants = m
            .nodes
            .iter()
            .filter(|n| n.kind == NativeKind::Onnx.name())
            .filter_map(|n| typed_config::<OnnxConfig>(&n.config).ok())
            .any(|c| c.int8_model.is_some());
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
        let signatures = check_edges(m, &dag, &ops)?;
        let nodes = m
            .nodes
            .iter()
            .zip(ops)
            .map(|(n, op)| {
                op.map(|op| PlannedNode {
                    id: n.id.clone(),
                    op,
                    signature: Signature::UNDECLARED,
                })
                .ok_or_else(|| format!("node '{}' was not planned", n.id))
            })
            .collect::<Result<_, _>>()?;
        let mut nodes: Vec<PlannedNode> = nodes;
        for (node, signature) in nodes.iter_mut().zip(signatures) {
            node.signature = signature;
        }
        Ok(Plan {
            id: m.id.clone(),
            nodes,
            dag,
        })
    }

    /// A native node's generic checks here, then its kind's own (inputs,
    /// config, model) through the one dispatch point, [`NativeNode::load`].
    fn native_op(&mut self, n: &NodeManifest, inputs: &[Edge]) -> Result<NodeOp, String> {
        let kind = NativeKind::from_name(&n.kind)
            .ok_or_else(|| format!("unknown kind '{}' (known kinds: {})", n.kind, known_kinds()))?;
        if n.component.is_some() {
            return Err(format!("{} takes no component", n.kind));
        }
        if !n.metadata.is_empty() {
            return Err("only wasm nodes take `metadata`".into());
        }
        let from_frame = inputs.iter().any(|e| e.source == Source::Frame);
        let int8 = self.int8;
        let node = NativeNode::load(kind, inputs.len(), from_frame, &n.config, int8, |file| {
            let path = self.ctx.model_dir.join(file);
            self.model(&path)
        })?;
        Ok(NodeOp::Native(node))
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
            let Some(Some(NodeOp::Native(NativeNode::Onnx(model)))) = ops.get(j) else {
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
        self.cache.component(self.engine, path, &mut self.used)
    }

    fn model(&mut self, path: &Path) -> Result<Arc<OnnxModel>, String> {
        let ctx = self.ctx;
        self.cache
            .model(&ctx.ort_lib, path, ctx.onnx, &mut self.used)
    }
}
