//! A node's code: read, compiled and checked against our WIT world once, when
//! its pipeline loads, never on the frame path.
//!
//! Three checks, in order: every import must belong to our WIT package
//! (`streamhost:node/...`) or be a WASI 0.2 interface the linker provides
//! (`wasi:io/streams@0.2.x`, ...; granted nothing, see `wasi.rs`), so a
//! component asking for anything else is refused by name before anything is
//! linked;
//! `Linker::instantiate_pre` proves each remaining import is one the host
//! provides with the right types; `NodeWorldPre::new` proves the component
//! exports our `node` interface with the exact types, of
//! `streamhost:node@0.2.0` or, for a component built before it, `0.1.0`
//! (which keeps loading and running unchanged). A 0.2.0 component is then
//! instantiated once, under the server's sandbox limits, to ask `describe`
//! for its [`Signature`]: the kinds its pipeline's edges are checked
//! against. A component that fails is refused with a reason naming the
//! offending item.

use std::path::{Path, PathBuf};

use crate::kinds::Signature;

use super::bindings::{v1, v2};
use super::engine::WasmEngine;
use super::instance::describe;
use super::store::NodeStore;
use super::wasi::is_provided_wasi_import;

/// The package every import of a node must come from.
pub const ALLOWED_IMPORT_PACKAGE: &str = "streamhost:node/";

/// Largest component file accepted (a compiled node is rarely over a few MiB).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WasmLoadError {
    #[error("cannot read component {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("component {path} is {size} bytes, over the {MAX_COMPONENT_BYTES} byte limit")]
    TooBig { path: PathBuf, size: u64 },
    #[error("{path} is not a valid component: {reason}")]
    Compile { path: PathBuf, reason: String },
    #[error("{path} imports {import}, which is outside the streamhost:node world and WASI 0.2 (a node may import only {ALLOWED_IMPORT_PACKAGE}host and the WASI 0.2 interfaces the host links, with nothing granted); see plugins/README.md")]
    ForbiddenImport { path: PathBuf, import: String },
    #[error("{path} imports something the host does not provide: {reason}")]
    Imports { path: PathBuf, reason: String },
    #[error("{path} does not export streamhost:node/node@0.2.0 as wit/node.wit defines it (nor @0.1.0, as wit/v0.1.0/node.wit does): {reason}")]
    Exports { path: PathBuf, reason: String },
    #[error("{path}: `describe` failed: {reason}")]
    Describe { path: PathBuf, reason: String },
}

/// Which `streamhost:node` package a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitVersion {
    V0_1,
    V0_2,
}

impl WitVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
        }
    }
}

/// A component's exports, checked against the WIT version it was built for.
pub(crate) enum NodePre {
    V1(v1::NodeWorldPre<NodeStore>),
    V2(v2::NodeWorldPre<NodeStore>),
}

/// A compiled, type-checked node component, ready to instantiate cheaply.
pub struct NodeComponent {
    pub(crate) pre: NodePre,
    path: PathBuf,
    signature: Signature,
    /// Loaded from `STREAMHOST_COMPILE_CACHE_DIR` rather than compiled.
    from_cache: bool,
}

impl NodeComponent {
    /// Whether it was loaded, compiled, from the compile cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    pub fn load(engine: &WasmEngine, path: &Path) -> Result<Self, WasmLoadError> {
        let read_err = |source| WasmLoadError::Read {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read_err)?.len();
        if size > MAX_COMPONENT_BYTES {
            return Err(WasmLoadError::TooBig {
                path: path.to_path_buf(),
                size,
            });
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        Self::from_bytes(engine, &bytes, path)
    }

    pub fn from_bytes(
        engine: &WasmEngine,
        bytes: &[u8],
        path: &Path,
    ) -> Result<Self, WasmLoadError> {
        let path = path.to_path_buf();
        let (component, from_cache) =
            super::compiled::compile(&engine.engine, bytes, engine.compile_cache.as_deref())
                .map_err(|e| WasmLoadError::Compile {
                    path: path.clone(),
                    reason: format!("{e:#}"),
                })?;
        // The copy-on-write memory images every instance maps (see `engine.rs`):
        // made now rather than by the first session's first frame.
        component
            .initialize_copy_on_write_image()
            .map_err(|e| WasmLoadError::Compile {
                path: path.clone(),
                reason: format!("memory image: {e:#}"),
            })?;
        let ty = component.component_type();
        let forbidden: Vec<String> = ty
            .imports(&engine.engine)
            .map(|(name, _)| name)
            .filter(|name| {
                !name.starts_with(ALLOWED_IMPORT_PACKAGE) && !is_provided_wasi_import(name)
            })
            .map(|name| name.chars().take(200).collect())
            .take(16)
            .collect();
        if !forbidden.is_empty() {
            return Err(WasmLoadError::ForbiddenImport {
                path,
                import: forbidden.join(", "),
            });
        }
        let instance_pre =
            engine
                .linker
                .instantiate_pre(&component)
                .map_err(|e| WasmLoadError::Imports {
                    path: path.clone(),
                    reason: format!("{e:#}"),
                })?;
        let exports_v2 = ty
            .exports(&engine.engine)
            .any(|(name, _)| name == "streamhost:node/node@0.2.0");
        let exports_err = |e: wasmtime::Error| WasmLoadError::Exports {
            path: path.clone(),
            reason: format!("{e:#}"),
        };
        if !exports_v2 {
            let pre = v1::NodeWorldPre::new(instance_pre).map_err(exports_err)?;
            return Ok(NodeComponent {
                pre: NodePre::V1(pre),
                path,
                signature: Signature::UNDECLARED,
                from_cache,
            });
        }
        let pre = v2::NodeWorldPre::new(instance_pre).map_err(exports_err)?;
        let signature = describe(engine, &pre).map_err(|reason| WasmLoadError::Describe {
            path: path.clone(),
            reason,
        })?;
        Ok(NodeComponent {
            pre: NodePre::V2(pre),
            path,
            signature,
            from_cache,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kinds the node declares (undeclared for a 0.1.0 component).
    pub fn signature(&self) -> Signature {
        self.signature
    }

    pub fn wit_version(&self) -> WitVersion {
        match self.pre {
            NodePre::V1(_) => WitVersion::V0_1,
            NodePre::V2(_) => WitVersion::V0_2,
        }
    }
}
