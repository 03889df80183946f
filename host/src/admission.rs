//! Admission policy: whether a connected client may have the pipeline it
//! named, and under which limits.
//!
//! A policy, not a transport concern: it asks the tenant whether the pipeline
//! id is theirs to use (before anything about the pipeline itself, so the
//! answer for another tenant's pipeline is the answer for no pipeline), the
//! registry for the plan, and the plan whether its nodes
//! fit the tenant's Wasm quotas. It lives apart from `ws/` so that the wire
//! contract (`wire.rs`), which maps [`AdmitError`] to its codes, imports
//! nothing from the transport, and so that this decision reads in one place.

use std::sync::Arc;

use crate::pipeline::plan::Plan;
use crate::pipeline::registry::{LookupError, PipelineRegistry};
use crate::tenants::Tenant;
use crate::wasm::InstanceLimits;

/// Why a connected client cannot have the pipeline it named (mapped to the
/// wire in `wire.rs`).
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Pipeline(#[from] LookupError),
    #[error("pipeline '{pipeline}' exceeds this token's quotas: {reason}")]
    OverQuota { pipeline: String, reason: String },
}

/// The pipeline a tenant asked for, with each node's limits under its quotas.
pub fn admit_pipeline(
    registry: &PipelineRegistry,
    tenant: &Tenant,
    pipeline_id: Option<&str>,
) -> Result<(Arc<Plan>, Vec<InstanceLimits>), AdmitError> {
    // The allow-list first: a pipeline this tenant may not use reads exactly
    // as one that does not exist (or failed to load), whatever its state.
    let id = pipeline_id
        .filter(|id| !id.is_empty())
        .ok_or(LookupError::Missing)?;
    if !tenant.may_use(id) {
        return Err(LookupError::Unknown.into());
    }
    let plan = registry.lookup(Some(id))?;
    let limits =
        plan.instance_limits(tenant.quotas.wasm)
            .map_err(|reason| AdmitError::OverQuota {
                pipeline: plan.id.clone(),
                reason,
            })?;
    Ok((plan, limits))
}
