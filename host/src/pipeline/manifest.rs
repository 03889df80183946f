//! The pipeline manifest format (`pipelines/*.toml`).
//!
//! ```toml
//! id = "frame_info"
//! description = "Frame size and mean brightness"
//! output = "info"                 # optional: defaults to the one node nothing consumes
//!
//! [[nodes]]
//! id = "decode"
//! kind = "jpeg_decode"            # native built-in
//! inputs = ["frame"]              # "frame" is the client's JPEG; also the default
//!
//! [[nodes]]
//! id = "info"
//! kind = "wasm"
//! component = "frame_info.wasm"   # relative to STREAMHOST_PLUGIN_DIR unless absolute
//! inputs = ["decode"]
//! config = { }                    # handed to the node's init() as JSON
//! ```
//!
//! A node may be conditional, for pipelines that skip work on some frames
//! (`ocr_stream` runs its detector only when the scene changed):
//!
//! ```toml
//! [[nodes]]
//! id = "det_pre"
//! kind = "to_tensor"
//! inputs = ["decode"]
//! when = "motion.detect"          # runs only when motion's JSON says "detect": true
//!
//! [[nodes]]
//! id = "boxes"
//! kind = "track_boxes"
//! inputs = ["found?", "motion"]   # "?": optional, absent on frames where `found` was skipped
//! ```
//!
//! `when = "node"` or `"node.field"` names an upstream node (see
//! [`super::dag`] for what counts as true); a node that is skipped makes every
//! node that needs its output skipped too, unless that node takes it as an
//! optional input (`"node?"`). The output node may never be skipped: the load
//! check refuses a pipeline where it could be.
//!
//! Manifests are untrusted input like everything else: unknown fields are
//! errors (a typo must not silently change behaviour), and sizes are capped.

use serde::Deserialize;

/// Largest manifest file read.
pub const MAX_MANIFEST_BYTES: usize = 256 << 10;
/// Most nodes one pipeline may have.
pub const MAX_NODES: usize = 64;
/// The reserved input name for the client's frame.
pub const FRAME_INPUT: &str = "frame";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub output: Option<String>,
    pub nodes: Vec<NodeManifest>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeManifest {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub config: toml::Table,
    /// For Wasm nodes: config keys filled at load from an `onnx` node's model
    /// metadata, as `key = "node.metadata_key"` (e.g. a CTC decoder's
    /// `alphabet = "rec.character"`), so the alphabet always matches the model.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Wasm nodes: the memory this node's instance needs, in MiB. Default: the
    /// server's `STREAMHOST_WASM_MEMORY_MB`. More than the server allows fails
    /// the load check; more than a tenant's `wasm_memory_mb` refuses that
    /// tenant's connect (`forbidden`).
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Wasm nodes: the time one call may take, in ms; same rules as `memory_mb`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Narrows the kinds this node takes (`["image"]`): only kinds the node
    /// itself declares; what every edge into it is checked against.
    #[serde(default)]
    pub takes: Option<Vec<String>>,
    /// Narrows the kinds this node gives, likewise.
    #[serde(default)]
    pub gives: Option<Vec<String>>,
    /// Runs the node only when this upstream value is true: `"node"` or
    /// `"node.field"` (see [`super::dag::Condition`]); otherwise it is skipped.
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("manifest is {0} bytes, over the {MAX_MANIFEST_BYTES} byte limit")]
    TooBig(usize),
    #[error("manifest is not valid TOML for a pipeline: {0}")]
    Syntax(String),
    #[error("{what} '{id}' is not a valid id: use 1-64 letters, digits, '_' or '-'")]
    BadId { what: &'static str, id: String },
    #[error("pipeline has {0} nodes, over the limit of {MAX_NODES}")]
    TooManyNodes(usize),
}

/// Ids are used as metric labels and log fields, so they are kept tame.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooBig(text.len()));
        }
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.message().to_string()))?;
        if !valid_id(&manifest.id) {
            return Err(ManifestError::BadId {
                what: "pipeline id",
                id: manifest.id,
            });
        }
        if manifest.nodes.len() > MAX_NODES {
            return Err(ManifestError::TooManyNodes(manifest.nodes.len()));
        }
        if let Some(bad) = manifest.nodes.iter().find(|n| !valid_id(&n.id)) {
            return Err(ManifestError::BadId {
                what: "node id",
                id: bad.id.clone(),
            });
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let m = Manifest::parse(
            r#"
            id = "frame_info"
            description = "d"
            [[nodes]]
            id = "decode"
            kind = "jpeg_decode"
            [[nodes]]
            id = "info"
            kind = "wasm"
            component = "frame_info.wasm"
            inputs = ["decode"]
            config = { threshold = 0.5 }
            "#,
        );
        let m = match m {
            Ok(m) => m,
            Err(e) => return assert_eq!(e.to_string(), ""),
        };
        assert_eq!(m.id, "frame_info");
        assert_eq!(m.nodes.len(), 2);
        assert_eq!(m.nodes[1].inputs, vec!["decode".to_string()]);
        assert_eq!(
            m.nodes[1]
                .config
                .get("threshold")
                .and_then(|v| v.as_float()),
            Some(0.5)
        );
    }

    #[test]
    fn unknown_fields_and_bad_ids_are_refused() {
        assert!(matches!(
            Manifest::parse("id = \"a\"\nnodes = []\ntypo = 1"),
            Err(ManifestError::Syntax(_))
        ));
        assert!(matches!(
            Manifest::parse("id = \"a b\"\nnodes = []"),
            Err(ManifestError::BadId { .. })
        ));
        assert!(matches!(
            Manifest::parse("id = \"a\"\n[[nodes]]\nid = \"x/y\"\nkind = \"wasm\""),
            Err(ManifestError::BadId { .. })
        ));
        assert!(matches!(
            Manifest::parse("not toml ["),
            Err(ManifestError::Syntax(_))
        ));
        let huge = format!(
            "id = \"a\"\ndescription = \"{}\"\nnodes = []",
            "x".repeat(MAX_MANIFEST_BYTES)
        );
        assert!(matches!(
            Manifest::parse(&huge),
            Err(ManifestError::TooBig(_))
        ));
    }
}
