//! What a loaded pipeline is: a [`Plan`], its nodes in manifest order, each
//! with what it does ([`NodeOp`]), and the checked DAG that wires them.
//!
//! A plan is the one thing the loader makes, the registry hands out and the
//! executor runs, so it lives apart from all three: the loader
//! ([`super::loader`]) builds it, the registry ([`super::registry`]) lists and
//! looks it up, [`super::exec`] and the int8 gate run it, and admission asks
//! it whether its Wasm nodes fit a tenant's quotas ([`Plan::instance_limits`]).
//! Nothing here loads or runs anything.

use std::sync::Arc;
use std::time::Duration;

use super::dag::Dag;
use crate::kinds::Signature;
use crate::nodes::NativeNode;
use crate::wasm::{InstanceLimits, NodeComponent};

/// What a node does.
pub enum NodeOp {
    /// A native kind, with its checked config or opened model (see [`crate::nodes`]).
    Native(NativeNode),
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
    /// The kinds it takes and gives, as its edges were checked.
    pub signature: Signature,
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
