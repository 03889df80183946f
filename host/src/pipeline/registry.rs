//! The registry of what serves: one entry per pipeline id, listed, and
//! looked up by id when a client connects.
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
//!
//! The registry is swappable one entry at a time (a lock held only to clone
//! or replace an `Arc`, never while loading): [`super::reconcile`] loads a
//! changed manifest off to the side and replaces the entry only when the new
//! version is ready, or, when it fails, keeps the serving version and records
//! the failed candidate beside it. A session holds the `Arc<Plan>` it was
//! admitted with, so replacing or removing an entry changes what new sessions
//! get and nothing about the sessions already open.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;

use super::cache::Digest;

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
    /// Its `when` condition, as the manifest writes it: the node runs only
    /// on frames where that value is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Whether it may be skipped on some frames (conditional, or needing a
    /// conditional node's output); absent when it runs on every frame.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub may_skip: bool,
    /// Whether it keeps state across a session's frames (a Wasm node
    /// always may; a native node only of the kinds that do).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stateful: bool,
}

/// A newer version of a ready pipeline that failed its load check; the
/// version before it keeps serving.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The failed version's content hash (see [`Pipeline::version`]).
    pub version: String,
    pub reason: String,
    pub source: PathBuf,
    pub failed_at: SystemTime,
}

/// A listed pipeline, ready or not.
#[derive(Clone)]
pub struct Pipeline {
    pub id: String,
    pub description: String,
    pub source: PathBuf,
    pub nodes: Vec<NodeSummary>,
    pub status: PipelineStatus,
    pub plan: Option<Arc<Plan>>,
    /// `None` when no node names an `int8_model`.
    pub int8: Option<Int8Status>,
    /// Content hash (sha256, first 16 hex digits) of the manifest and of
    /// every component and model it names: of the serving version when
    /// ready, of the version that failed otherwise.
    pub version: String,
    /// When this version was loaded (or, failed, checked).
    pub loaded_at: SystemTime,
    /// The latest newer version, when it failed and this one still serves.
    pub candidate: Option<Candidate>,
    /// Digests of the components and models the plan uses (what the load
    /// cache keeps while it serves).
    pub uses: Vec<Digest>,
}

#[derive(Default)]
pub struct PipelineRegistry {
    pipelines: RwLock<BTreeMap<String, Arc<Pipeline>>>,
}

/// Why a connect to a pipeline id is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LookupError {
    #[error("Missing pipeline_id")]
    Missing,
    /// No such pipeline, or (with tenants) none this token may use: the two
    /// read the same, and the id is not echoed, so a tenant cannot tell
    /// another tenant's pipelines from ids that do not exist.
    #[error("Unknown pipeline_id (GET /pipelines lists the pipelines this client may use)")]
    Unknown,
    #[error("Pipeline '{id}' failed its load check: {reason}")]
    Failed { id: String, reason: String },
}

impl PipelineRegistry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Pipeline>>> {
        // A panic elsewhere while holding the lock cannot leave the map half-changed
        // (every change is one insert or remove), so a poisoned lock is still good.
        self.pipelines.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Pipeline>>> {
        self.pipelines.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lookup(&self, id: Option<&str>) -> Result<Arc<Plan>, LookupError> {
        let id = id.filter(|s| !s.is_empty()).ok_or(LookupError::Missing)?;
        let p = self.get(id).ok_or(LookupError::Unknown)?;
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

    /// The entry for `id`, as it is now.
    pub fn get(&self, id: &str) -> Option<Arc<Pipeline>> {
        self.read().get(id).cloned()
    }

    /// Every entry as it is now, sorted by id.
    pub fn all(&self) -> Vec<Arc<Pipeline>> {
        self.read().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn ready_count(&self) -> usize {
        self.read()
            .values()
            .filter(|p| p.status == PipelineStatus::Ready)
            .count()
    }

    /// Puts `p` in place of whatever was listed under its id.
    pub(crate) fn insert(&self, p: Pipeline) {
        self.write().insert(p.id.clone(), Arc::new(p));
    }

    /// Unlists `id`; sessions already open on it go on with their plan.
    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Pipeline>> {
        self.write().remove(id)
    }
}
