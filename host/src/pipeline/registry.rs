//! The registry of what serves: every manifest in the pipelines directory,
//! loaded at start, listed, and looked up by id when a client connects.
//!
//! A pipeline that fails any load-time check stays listed, with its reason,
//! and refuses connects with `invalid_pipeline` and that reason: an operator
//! sees what is wrong in `/pipelines` and the logs, and the good pipelines keep
//! serving. The checks are, in order: the manifest is small enough and
//! parses ([`super::manifest`]); then the loader ([`super::loader`]) plans it:
//! the DAG is sound, every node's kind, config, component and model load, and
//! where int8 variants may run the int8 gate decides which plan serves; which
//! runs, and why, is logged and shown in `/pipelines`. What a ready pipeline
//! serves is its [`Plan`] ([`super::plan`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::loader::Loader;
use super::manifest::{Manifest, FRAME_INPUT, MAX_MANIFEST_BYTES};
use crate::wasm::WasmEngine;

// The paths these had when planning, loading and listing were one module.
pub use super::loader::{Int8Choice, Int8Status, LoadContext};
pub use super::plan::{NodeAsks, NodeOp, Plan, PlannedNode};

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
    /// The kinds it takes and gives, once its pipeline loaded (absent for
    /// a 0.1.0 component its manifest does not narrow: unchecked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub takes: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gives: Option<Vec<&'static str>>,
    /// A Wasm node's WIT version (`0.2.0`, or `0.1.0` for an older component).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wit: Option<&'static str>,
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
        let mut loader = Loader::new(ctx, engine);
        let mut pipelines = BTreeMap::new();
        for file in files {
            let mut pipeline = load_file(&mut loader, &file);
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

/// One manifest file, listed whatever its fate: ready with its plan, or failed with the reason.
fn load_file(loader: &mut Loader<'_>, file: &Path) -> Pipeline {
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
            takes: None,
            gives: None,
            wit: None,
        })
        .collect::<Vec<_>>();
    let (status, plan, int8) = match loader.plan_choosing_models(&manifest, &text) {
        Ok((plan, int8)) => (PipelineStatus::Ready, Some(plan), int8),
        Err(reason) => (PipelineStatus::Failed(reason), None, None),
    };
    let mut nodes = nodes;
    if let Some(plan) = &plan {
        for (summary, node) in nodes.iter_mut().zip(&plan.nodes) {
            if node.signature.declared {
                summary.takes = Some(node.signature.takes.names());
                summary.gives = Some(node.signature.gives.names());
            }
            if let NodeOp::Wasm { component, .. } = &node.op {
                summary.wit = Some(component.wit_version().as_str());
            }
        }
    }
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
