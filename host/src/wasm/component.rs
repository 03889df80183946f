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
//! exports our `node` interface with the exact types. A component that fails
//! is refused with a reason naming the offending item.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use super::bindings::NodeWorldPre;
use super::engine::WasmEngine;
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
    #[error(
        "{path} does not export streamhost:node/node@0.1.0 as wit/node.wit defines it: {reason}"
    )]
    Exports { path: PathBuf, reason: String },
}

/// A compiled, type-checked node component, ready to instantiate cheaply.
pub struct NodeComponent {
    pub(crate) pre: NodeWorldPre<NodeStore>,
    path: PathBuf,
}

impl NodeComponent {
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
        let component =
            Component::new(&engine.engine, bytes).map_err(|e| WasmLoadError::Compile {
                path: path.clone(),
                reason: format!("{e:#}"),
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
        let pre = NodeWorldPre::new(instance_pre).map_err(|e| WasmLoadError::Exports {
            path: path.clone(),
            reason: format!("{e:#}"),
        })?;
        Ok(NodeComponent { pre, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
