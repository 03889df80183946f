//! Compiled components kept on disk (`STREAMHOST_COMPILE_CACHE_DIR`), so a
//! restart, a reload after a restart or a new replica loads native code
//! instead of compiling a component again: CPython or SpiderMonkey inside a
//! Python or JavaScript node is 10-20 s of Cranelift work each start.
//!
//! A file is named by the component's sha256 and a hash of the engine's
//! compatibility settings (wasmtime's version and every code-generation
//! option, including the pooling allocator's), so a file is only ever loaded
//! into an engine that could have made it; wasmtime checks again as it loads.
//! Loading is wasmtime's `Component::deserialize_file`, which trusts the
//! bytes as native code: the directory must be writable by the server alone
//! (the README says so), as the binary itself is. Anything wrong with a file
//! (unreadable, from another build, cut short) is logged and the component is
//! compiled as if there were none, then written again. Writes go to a
//! temporary name first and are renamed into place, so a reader never sees a
//! half-written file; at most [`MAX_COMPILE_CACHE_FILES`] files are kept, the
//! least recently written removed first. The cache is best-effort: an
//! unwritable directory only costs the compile it would have saved.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::config::MAX_COMPILE_CACHE_FILES;

const EXTENSION: &str = "cwasm";

/// Where `bytes`, compiled by `engine`, are kept under `dir`.
pub fn cache_file(dir: &Path, engine: &Engine, bytes: &[u8]) -> PathBuf {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    dir.join(format!("{hex}-{:016x}.{EXTENSION}", compat.finish()))
}

/// `bytes` compiled by `engine`: loaded from `dir` when it holds them,
/// otherwise compiled (and, with a `dir`, written there); the bool says
/// whether it came from the cache. The one `unsafe` of the crate outside
/// libjpeg's bindings: loading precompiled code cannot be done otherwise.
#[allow(unsafe_code)]
pub fn compile(
    engine: &Engine,
    bytes: &[u8],
    dir: Option<&Path>,
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, bytes)?, false));
    };
    let file = cache_file(dir, engine, bytes);
    if file.is_file() {
        // SAFETY: the file was written by `serialize` of an engine with the
        // same compatibility hash (its name says so and wasmtime checks its
        // header); the directory is the operator's, trusted as the binary is
        // (module doc).
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(component) => return Ok((component, true)),
            Err(e) => tracing::warn!(file = %file.display(), error = %format!("{e:#}"),
                "compiled component not loaded from the cache; compiling it again"),
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = store(dir, &file, &component) {
        tracing::warn!(dir = %dir.display(), error = %e, "compiled component not written to the cache");
    }
    Ok((component, false))
}

fn store(dir: &Path, file: &Path, component: &Component) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let image = component.serialize().map_err(|e| format!("{e:#}"))?;
    let temporary = file.with_extension(format!("{EXTENSION}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, image).map_err(|e| e.to_string())?;
    std::fs::rename(&temporary, file).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        e.to_string()
    })?;
    prune(dir, MAX_COMPILE_CACHE_FILES);
    Ok(())
}

/// Removes the least recently written cache files beyond `keep`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXTENSION))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort();
    for (_, old) in &files[..files.len() - keep] {
        let _ = std::fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_files_beyond_the_limit_go_and_others_are_left_alone() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        for k in 0..5 {
            let path = dir.path().join(format!("{k}.{EXTENSION}"));
            std::fs::write(&path, [k]).unwrap_or_default();
            let when =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + k as u64);
            let _ = std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(when));
        }
        std::fs::write(dir.path().join("notes.txt"), "kept").unwrap_or_default();
        prune(dir.path(), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        left.sort();
        assert_eq!(left, vec!["2.cwasm", "3.cwasm", "4.cwasm", "notes.txt"]);
    }

    #[test]
    fn a_file_is_named_by_the_bytes_and_the_engine() {
        let engine = Engine::default();
        let a = cache_file(Path::new("/c"), &engine, b"one");
        let b = cache_file(Path::new("/c"), &engine, b"two");
        assert_ne!(a, b);
        assert_eq!(a, cache_file(Path::new("/c"), &engine, b"one"));
        let mut other = wasmtime::Config::new();
        other.epoch_interruption(true);
        let other = Engine::new(&other).unwrap_or_else(|e| unreachable!("{e}"));
        assert_ne!(a, cache_file(Path::new("/c"), &other, b"one"));
    }
}
