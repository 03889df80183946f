//! What loading a pipeline is slow to make, kept by content across loads and
//! reloads: compiled components and opened models, keyed by the sha256 of
//! their file's bytes, and each file's sha256, remembered for as long as its
//! size, times and inode stay the same.
//!
//! Keyed by content, not path: a reload that finds a component's bytes
//! unchanged reuses its compilation (an 18 MB CPython component takes 20-40 s
//! to compile on two cores; a manifest beside it reloads in milliseconds),
//! and a file copied over another is compiled afresh even if its size and
//! times happen to match, because the digest is of what is compiled. The
//! digest memo ([`FileDigests`]) is what makes "did anything change?" cheap:
//! a stat per file, and a read only when the stat changed.
//!
//! Bounded: after each reload the registry keeps only the entries some
//! serving pipeline uses ([`LoadCache::retain`]); sessions still running an
//! older version hold their own `Arc`s, so dropping an entry never pulls
//! anything from under them. Failures are not cached: a missing file may
//! appear, and the next load should see it.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use crate::nodes::onnx::{OnnxModel, OnnxSizing};
use crate::wasm::component::MAX_COMPONENT_BYTES;
use crate::wasm::{NodeComponent, WasmEngine, WasmLoadError};

/// The sha256 of a file's bytes.
pub type Digest = [u8; 32];

/// What a stat says about a file: if none of it changed, neither did the file
/// (an in-place write changes the times, a rename the inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    modified_ns: i128,
    changed_ns: i128,
    inode: u64,
}

impl Fingerprint {
    /// The file's fingerprint (following links), or `None` when it cannot be stat'ed.
    pub fn of(path: &Path) -> Option<Fingerprint> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
            Some(Fingerprint {
                len: meta.len(),
                modified_ns: ns(meta.mtime(), meta.mtime_nsec()),
                changed_ns: ns(meta.ctime(), meta.ctime_nsec()),
                inode: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let modified_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            Some(Fingerprint {
                len: meta.len(),
                modified_ns,
                changed_ns: 0,
                inode: 0,
            })
        }
    }
}

/// Each file's digest, recomputed only when its fingerprint changed.
#[derive(Default)]
pub struct FileDigests {
    memo: HashMap<PathBuf, (Fingerprint, Digest)>,
}

impl FileDigests {
    /// The digest of `path`'s bytes, or `None` when it cannot be read.
    pub fn digest(&mut self, path: &Path) -> Option<Digest> {
        let before = Fingerprint::of(path)?;
        if let Some((fp, d)) = self.memo.get(path) {
            if *fp == before {
                return Some(*d);
            }
        }
        let digest = digest_file(path).ok()?;
        self.remember(path, before, digest);
        Some(digest)
    }

    /// Records a digest computed from bytes read after `before` was taken.
    fn remember(&mut self, path: &Path, before: Fingerprint, digest: Digest) {
        self.memo.insert(path.to_path_buf(), (before, digest));
    }

    /// Forgets files not in `keep` (so the memo is as large as what is watched).
    pub fn retain(&mut self, keep: &HashSet<PathBuf>) {
        self.memo.retain(|p, _| keep.contains(p));
    }
}

/// A file's sha256, streamed (models are megabytes).
fn digest_file(path: &Path) -> std::io::Result<Digest> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finalize().into())
}

/// Compiled components and opened models by content, with the file digests.
pub struct LoadCache {
    pub files: FileDigests,
    components: HashMap<Digest, Arc<NodeComponent>>,
    models: HashMap<Digest, Arc<OnnxModel>>,
    /// Count every compilation (`stream_component_compilations`) and model
    /// opened (`stream_model_loads`), so a reload that should have reused one
    /// can be told from one that did not.
    compilations: prometheus::IntCounter,
    model_loads: prometheus::IntCounter,
}

impl LoadCache {
    pub fn new(compilations: prometheus::IntCounter, model_loads: prometheus::IntCounter) -> Self {
        LoadCache {
            files: FileDigests::default(),
            components: HashMap::new(),
            models: HashMap::new(),
            compilations,
            model_loads,
        }
    }

    /// The compiled component in `path`, compiled only if no cached one has
    /// the same bytes; its digest is added to `used`.
    pub fn component(
        &mut self,
        engine: &WasmEngine,
        path: &Path,
        used: &mut HashSet<Digest>,
    ) -> Result<Arc<NodeComponent>, String> {
        let read_err = |source| {
            WasmLoadError::Read {
                path: path.to_path_buf(),
                source,
            }
            .to_string()
        };
        let before = Fingerprint::of(path);
        // The stat unchanged and its digest cached: no need to read 18 MB again.
        if let Some(fp) = before {
            if let Some((seen, d)) = self.files.memo.get(path) {
                if *seen == fp {
                    if let Some(c) = self.components.get(d) {
                        used.insert(*d);
                        return Ok(c.clone());
                    }
                }
            }
        }
        let size = std::fs::metadata(path).map_err(read_err)?.len();
        if size > MAX_COMPONENT_BYTES {
            return Err(WasmLoadError::TooBig {
                path: path.to_path_buf(),
                size,
            }
            .to_string());
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        let digest: Digest = Sha256::digest(&bytes).into();
        if let Some(fp) = before {
            self.files.remember(path, fp, digest);
        }
        if let Some(c) = self.components.get(&digest) {
            used.insert(digest);
            return Ok(c.clone());
        }
        let started = Instant::now();
        let component = NodeComponent::from_bytes(engine, &bytes, path)
            .map(Arc::new)
            .map_err(|e| e.to_string())?;
        let ms = started.elapsed().as_millis() as u64;
        if component.from_cache() {
            tracing::info!(component = %path.display(), bytes = bytes.len(), sha256 = %short_hex(&digest),
                ms, "component loaded from the compile cache");
        } else {
            self.compilations.inc();
            tracing::info!(component = %path.display(), bytes = bytes.len(), sha256 = %short_hex(&digest),
                ms, "component compiled");
        }
        self.components.insert(digest, component.clone());
        used.insert(digest);
        Ok(component)
    }

    /// The model in `path`, opened only if no cached one has the same bytes;
    /// its digest is added to `used`.
    pub fn model(
        &mut self,
        ort_lib: &Path,
        path: &Path,
        sizing: OnnxSizing,
        used: &mut HashSet<Digest>,
    ) -> Result<Arc<OnnxModel>, String> {
        let digest = self.files.digest(path);
        if let Some(m) = digest.and_then(|d| self.models.get(&d)) {
            used.extend(digest);
            return Ok(m.clone());
        }
        let model = OnnxModel::load(ort_lib, path, sizing)
            .map(Arc::new)
            .map_err(|e| e.to_string())?;
        self.model_loads.inc();
        if let Some(d) = digest {
            self.models.insert(d, model.clone());
            used.insert(d);
        }
        Ok(model)
    }

    /// Keeps only the components and models whose digest is in `keep`.
    pub fn retain(&mut self, keep: &HashSet<Digest>) {
        self.components.retain(|d, _| keep.contains(d));
        self.models.retain(|d, _| keep.contains(d));
    }

    /// How many components and models are cached.
    pub fn len(&self) -> (usize, usize) {
        (self.components.len(), self.models.len())
    }
}

/// The first 8 bytes of a digest in hex: enough to tell versions apart in
/// logs and `/pipelines`, short enough to read.
pub fn short_hex(d: &Digest) -> String {
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_recomputed_only_when_the_stat_changes() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => return assert_eq!(e.to_string(), ""),
        };
        let path = dir.path().join("a.bin");
        let write = |bytes: &[u8]| std::fs::write(&path, bytes).map_err(|e| e.to_string());
        assert_eq!(write(b"one"), Ok(()));
        let mut files = FileDigests::default();
        let first = files.digest(&path);
        assert_eq!(first, Some(Sha256::digest(b"one").into()));
        assert_eq!(files.digest(&path), first);
        // In place: same length, new bytes.
        assert_eq!(write(b"two"), Ok(()));
        assert_eq!(files.digest(&path), Some(Sha256::digest(b"two").into()));
        // Write-then-rename: a new inode.
        let tmp = dir.path().join(".a.bin.tmp");
        assert_eq!(
            std::fs::write(&tmp, b"three").map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(files.digest(&path), Some(Sha256::digest(b"three").into()));
        assert_eq!(
            std::fs::remove_file(&path).map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(files.digest(&path), None);
        files.retain(&HashSet::new());
        assert!(files.memo.is_empty());
    }

    #[test]
    fn short_hex_is_sixteen_digits() {
        let d: Digest = Sha256::digest(b"x").into();
        assert_eq!(short_hex(&d).len(), 16);
    }
}
