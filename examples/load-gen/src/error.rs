//! The ways [`crate::run`] can fail before or outside the load itself.

/// Why a load run could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The spec cannot be run as given (no frames, bad URL or token, contradictory modes, ...).
    #[error("invalid load spec: {0}")]
    InvalidSpec(String),
    /// A session task panicked or was cancelled.
    #[error("a session task failed: {0}")]
    SessionTask(String),
}
