//! Why a node refused or failed, as the node's code says it. One enum with the three cases of the
//! WIT `node-error` and a constructor per case taking anything printable, so that `?` on a
//! helper of this crate and `Err(Error::input(format!(..)))` read the same way; the conversion to
//! the WIT type happens once, in [`crate::Session`].

use crate::bindings::streamhost::node::types::NodeError;

/// Why a node refused or failed; reported to the client as `pipeline_failure`, naming the node
/// (or, from `new`, as the pipeline's load failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The manifest's config for this node is unusable (WIT `invalid-config`).
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// An input has the wrong kind, shape or size (WIT `invalid-input`).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything else that went wrong on this frame (WIT `failed`).
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// [`Error::InvalidConfig`] with `message`.
    pub fn config(message: impl std::fmt::Display) -> Self {
        Error::InvalidConfig(message.to_string())
    }

    /// [`Error::InvalidInput`] with `message`.
    pub fn input(message: impl std::fmt::Display) -> Self {
        Error::InvalidInput(message.to_string())
    }

    /// [`Error::Failed`] with `message`.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Error::Failed(message.to_string())
    }
}

impl From<Error> for NodeError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidConfig(m) => NodeError::InvalidConfig(m),
            Error::InvalidInput(m) => NodeError::InvalidInput(m),
            Error::Failed(m) => NodeError::Failed(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_case_maps_to_its_wit_case_with_the_message() {
        assert_eq!(
            NodeError::from(Error::config("x")),
            NodeError::InvalidConfig("x".into())
        );
        assert_eq!(
            NodeError::from(Error::input(3)),
            NodeError::InvalidInput("3".into())
        );
        assert_eq!(
            NodeError::from(Error::failed("boom")),
            NodeError::Failed("boom".into())
        );
        assert_eq!(Error::input("short").to_string(), "invalid input: short");
    }
}
