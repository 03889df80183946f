//! The int8 gate: an `onnx` node's int8 variant serves only once it has been
//! shown, on the CPU the server runs on, to leave the pipeline's answers as
//! they are.
//!
//! Why a gate and not a promise: a quantised detector that is "close" moves
//! box edges by a pixel or two, and a box edge that moves can eat the space
//! between two words (`Total: $18.40` read as `Total:$18.40` on a VNNI Xeon,
//! issue 16), while int8 kernels differ between CPUs (VNNI sums in 32 bits,
//! AVX2 saturates in 16). So whether int8 is exact is a fact about a model, a
//! pipeline and a CPU together, and it is measured where it matters: at load,
//! the pipeline is planned twice, with and without its int8 models, and every
//! held-out frame (`STREAMHOST_INT8_GATE_FRAMES`, rendered by `make models`
//! with a seed of their own: neither the calibration frames nor the
//! benchmark corpus) runs through both. The int8 plan serves only if every
//! result is the same: same JSON shape, every string equal (so every line
//! reads the same), every number under a `box` key within
//! `STREAMHOST_INT8_GATE_BOX_PX` and any other number within
//! `STREAMHOST_INT8_GATE_SCORE_DIFF`. The first difference is the reason the
//! fp32 plan serves instead, logged and shown in `/pipelines`.
//!
//! A verdict costs a few seconds per pipeline, so it is cached as a small
//! JSON file in the frames' `.verdicts` folder, keyed by the sha256 of
//! everything that could change it: the manifest, every model and component
//! file the two plans use, the ONNX Runtime library, the frames, the
//! tolerances and the CPU's kernel-selecting features ([`crate::cpu`]).
//! Servers starting at once on one machine take a file lock, so one computes
//! and the others read. A folder that cannot be written only means the next
//! start measures again.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::exec::{ExecLimits, FrameAt, SessionRunner};
use super::occupancy::Occupancy;
use super::plan::{NodeOp, Plan};
use crate::nodes::NativeNode;
use crate::wasm::WasmEngine;

/// Changes whenever the comparison rules change, so older verdicts are not reused.
const GATE_VERSION: &str = "int8-gate-1";

/// Fewer held-out frames than this prove nothing; the int8 variant is refused.
pub const MIN_GATE_FRAMES: usize = 10;
/// At most this many frames (sorted by name) are run, so a start stays bounded.
pub const MAX_GATE_FRAMES: usize = 200;
/// A gate frame larger than this is refused like a client's would be.
const MAX_GATE_FRAME_BYTES: u64 = 16 << 20;

/// How the gate runs (from `Config`).
#[derive(Debug, Clone)]
pub struct GateSettings {
    pub frames_dir: PathBuf,
    pub max_box_px: f64,
    pub max_score_diff: f64,
    pub exec: ExecLimits,
    /// The ONNX Runtime library, hashed into the verdict's key.
    pub ort_lib: PathBuf,
}

/// What the gate decided, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub exact: bool,
    /// For an exact verdict, what was checked; otherwise the first difference.
    pub reason: String,
    /// Held-out frames compared.
    pub frames: usize,
    /// The CPU features it was measured with.
    pub cpu: String,
}

/// Why the gate could not measure at all (the int8 variant is then refused).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot read the int8 gate's frames in {dir}: {reason} (make models renders them)")]
    Frames { dir: String, reason: String },
    #[error("only {found} held-out frames in {dir}, at least {MIN_GATE_FRAMES} needed (make models renders them)")]
    TooFewFrames { dir: String, found: usize },
}

/// Runs (or recalls) the comparison of `fp32` and `int8`, two plans of one
/// manifest (`manifest_text`) that differ only in which model files their
/// `onnx` nodes load.
pub fn judge(
    settings: &GateSettings,
    engine: &Arc<WasmEngine>,
    manifest_text: &str,
    fp32: &Arc<Plan>,
    int8: &Arc<Plan>,
) -> Result<Verdict, GateError> {
    let frames = read_frames(&settings.frames_dir)?;
    let cpu = crate::cpu::kernel_features();
    let key = verdict_key(settings, manifest_text, fp32, int8, &frames, &cpu);
    let cache_dir = settings.frames_dir.join(".verdicts");
    let cache_file = cache_dir.join(format!("{key}.json"));
    // One server computes; the others wait on the lock and read its verdict.
    let _lock = lock(&cache_dir);
    if let Some(v) = std::fs::read(&cache_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Verdict>(&b).ok())
    {
        return Ok(v);
    }
    let verdict = compare_plans(settings, engine, fp32, int8, &frames, cpu);
    if let Err(e) = store(&cache_file, &verdict) {
        tracing::warn!(file = %cache_file.display(), error = %e, "int8 gate verdict not cached; the next start measures again");
    }
    Ok(verdict)
}

fn compare_plans(
    settings: &GateSettings,
    engine: &Arc<WasmEngine>,
    fp32: &Arc<Plan>,
    int8: &Arc<Plan>,
    frames: &[(String, bytes::Bytes)],
    cpu: String,
) -> Verdict {
    let runner = |plan: &Arc<Plan>| {
        plan.instance_limits(engine.limits().instance_limits())
            .map(|limits| {
                SessionRunner::new(
                    plan.clone(),
                    engine.clone(),
                    settings.exec,
                    limits,
                    Occupancy::default(),
                    "int8-gate".into(),
                )
            })
    };
    let (mut reference, mut candidate) = match (runner(fp32), runner(int8)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return Verdict {
                exact: false,
                reason: format!("cannot run the pipeline to compare: {e}"),
                frames: 0,
                cpu,
            }
        }
    };
    let tol = Tolerance {
        box_px: settings.max_box_px,
        other: settings.max_score_diff,
    };
    for (n, (name, frame)) in frames.iter().enumerate() {
        // Each plan sees the frames as one session would, numbered from 1;
        // but they are unrelated stills, so a pipeline that reuses work
        // across frames (ocr_stream) sees each as if it were its first.
        reference.forget_frames();
        candidate.forget_frames();
        let at = FrameAt {
            index: n as u64 + 1,
            received: Duration::ZERO,
        };
        let a = outcome_json(reference.run(frame.clone(), at).result);
        let b = outcome_json(candidate.run(frame.clone(), at).result);
        if let Err(diff) = same_answer(&a, &b, tol) {
            return Verdict {
                exact: false,
                reason: format!("held-out frame {name} answers differently under int8: {diff}"),
                frames: frames.len(),
                cpu,
            };
        }
    }
    Verdict {
        exact: true,
        reason: format!(
            "same answers as fp32 on {} held-out frames (texts identical, boxes within {} px, scores within {})",
            frames.len(),
            tol.box_px,
            tol.other
        ),
        frames: frames.len(),
        cpu,
    }
}

/// A frame's result as JSON; a failure compares as its error text.
fn outcome_json(result: Result<Box<serde_json::value::RawValue>, super::exec::ExecError>) -> Json {
    match result {
        Ok(raw) => serde_json::from_str(raw.get())
            .unwrap_or_else(|e| serde_json::json!({ "unparsable": e.to_string() })),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

/// How far numbers may move for two answers to count as the same.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// For numbers anywhere under a key named `box`: pixel coordinates.
    pub box_px: f64,
    /// For every other number (scores, confidences).
    pub other: f64,
}

/// Whether `b` gives the same answer as `a`; otherwise where they first differ
/// (a JSON pointer) and how.
pub fn same_answer(a: &Json, b: &Json, tol: Tolerance) -> Result<(), String> {
    walk(a, b, tol, false, &mut String::new())
}

fn walk(a: &Json, b: &Json, tol: Tolerance, in_box: bool, at: &mut String) -> Result<(), String> {
    let here = |at: &String| {
        if at.is_empty() {
            "/".to_string()
        } else {
            at.clone()
        }
    };
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let len = at.len();
                at.push('/');
                at.push_str(k);
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => walk(u, v, tol, in_box || k == "box", at)?,
                    _ => return Err(format!("{}: present on one side only", here(at))),
                }
                at.truncate(len);
            }
            Ok(())
        }
        (Json::Array(x), Json::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!(
                    "{}: {} items with fp32, {} with int8 ({} vs {})",
                    here(at),
                    x.len(),
                    y.len(),
                    brief(a),
                    brief(b)
                ));
            }
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                walk(u, v, tol, in_box, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            let limit = if in_box { tol.box_px } else { tol.other };
            if (x - y).abs() <= limit {
                Ok(())
            } else {
                Err(format!(
                    "{}: {x} with fp32, {y} with int8 (allowed {limit})",
                    here(at)
                ))
            }
        }
        _ if a == b => Ok(()),
        _ => Err(format!(
            "{}: {} with fp32, {} with int8",
            here(at),
            brief(a),
            brief(b)
        )),
    }
}

/// A value as compact JSON, cut to a log-friendly length.
fn brief(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// The held-out frames: every `*.jpg` in `dir`, sorted by name, at most [`MAX_GATE_FRAMES`].
fn read_frames(dir: &Path) -> Result<Vec<(String, bytes::Bytes)>, GateError> {
    let failed = |reason: String| GateError::Frames {
        dir: dir.display().to_string(),
        reason,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| failed(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    paths.sort();
    paths.truncate(MAX_GATE_FRAMES);
    if paths.len() < MIN_GATE_FRAMES {
        return Err(GateError::TooFewFrames {
            dir: dir.display().to_string(),
            found: paths.len(),
        });
    }
    paths
        .iter()
        .map(|p| {
            let len = std::fs::metadata(p)
                .map_err(|e| failed(e.to_string()))?
                .len();
            if len > MAX_GATE_FRAME_BYTES {
                return Err(failed(format!("{} is over 16 MiB", p.display())));
            }
            let bytes = std::fs::read(p).map_err(|e| failed(e.to_string()))?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, bytes::Bytes::from(bytes)))
        })
        .collect()
}

/// The sha256 of everything a verdict depends on.
fn verdict_key(
    settings: &GateSettings,
    manifest_text: &str,
    fp32: &Plan,
    int8: &Plan,
    frames: &[(String, bytes::Bytes)],
    cpu: &str,
) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(GATE_VERSION.as_bytes());
    field(cpu.as_bytes());
    field(manifest_text.as_bytes());
    field(&settings.max_box_px.to_le_bytes());
    field(&settings.max_score_diff.to_le_bytes());
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    files.insert(settings.ort_lib.clone());
    for plan in [fp32, int8] {
        for node in &plan.nodes {
            match &node.op {
                NodeOp::Native(NativeNode::Onnx(model)) => {
                    files.insert(model.path().to_path_buf());
                }
                NodeOp::Wasm { component, .. } => {
                    files.insert(component.path().to_path_buf());
                }
                _ => {}
            }
        }
    }
    for file in &files {
        field(file.to_string_lossy().as_bytes());
        field(&file_digest(file));
    }
    for (name, bytes) in frames {
        field(name.as_bytes());
        field(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A file's sha256, streamed (models and the runtime library are megabytes);
/// an unreadable file hashes as its error, which never matches a real digest.
fn file_digest(path: &Path) -> Vec<u8> {
    let mut h = Sha256::new();
    match std::fs::File::open(path) {
        Ok(mut f) => {
            if let Err(e) = std::io::copy(&mut f, &mut h) {
                h.update(e.to_string().as_bytes());
            }
        }
        Err(e) => h.update(e.to_string().as_bytes()),
    }
    h.finalize().to_vec()
}

/// An exclusive lock on `dir/.lock`, held until dropped; `None` where the
/// folder cannot be written (then nothing is shared: each start measures).
fn lock(dir: &Path) -> Option<std::fs::File> {
    std::fs::create_dir_all(dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .ok()?;
    file.lock().ok()?;
    Some(file)
}

/// Writes the verdict atomically (a `.part` file renamed into place).
fn store(file: &Path, verdict: &Verdict) -> std::io::Result<()> {
    let part = file.with_extension("json.part");
    let mut f = std::fs::File::create(&part)?;
    f.write_all(&serde_json::to_vec_pretty(verdict).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&part, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOL: Tolerance = Tolerance {
        box_px: 2.0,
        other: 0.05,
    };

    fn line(text: &str, x: f64, score: f64) -> Json {
        json!({"text": text, "score": score, "box": [[x, 10.0], [x + 90.0, 10.0], [x + 90.0, 30.0], [x, 30.0]]})
    }

    #[test]
    fn equal_texts_with_boxes_and_scores_inside_the_tolerances_are_the_same_answer() {
        let a = json!({"text": [line("Total: $18.40", 12.0, 0.97), line("Exit 12B", 40.0, 0.99)]});
        let b = json!({"text": [line("Total: $18.40", 13.5, 0.93), line("Exit 12B", 38.0, 0.99)]});
        assert_eq!(same_answer(&a, &b, TOL), Ok(()));
    }

    #[test]
    fn a_lost_space_is_a_different_answer_named_by_its_place() {
        let a = json!({"text": [line("Exit 12B", 40.0, 0.99), line("Total: $18.40", 12.0, 0.97)]});
        let b = json!({"text": [line("Exit 12B", 40.0, 0.99), line("Total:$18.40", 12.0, 0.97)]});
        let err = same_answer(&a, &b, TOL).unwrap_err();
        assert!(err.starts_with("/text/1/text:"), "{err}");
        assert!(
            err.contains("\"Total: $18.40\" with fp32")
                && err.contains("\"Total:$18.40\" with int8"),
            "{err}"
        );
    }

    #[test]
    fn a_box_edge_past_the_pixel_tolerance_or_a_score_past_its_own_differs() {
        let a = json!({"text": [line("Room 305", 12.0, 0.97)]});
        let moved = json!({"text": [line("Room 305", 14.5, 0.97)]});
        let err = same_answer(&a, &moved, TOL).unwrap_err();
        assert!(err.starts_with("/text/0/box/"), "{err}");
        let unsure = json!({"text": [line("Room 305", 12.0, 0.90)]});
        let err = same_answer(&a, &unsure, TOL).unwrap_err();
        assert!(err.starts_with("/text/0/score"), "{err}");
    }

    #[test]
    fn an_extra_or_missing_line_or_key_differs() {
        let a = json!({"text": [line("Zone C", 5.0, 0.9)]});
        let none = json!({"text": []});
        assert!(same_answer(&a, &none, TOL)
            .unwrap_err()
            .contains("1 items with fp32, 0 with int8"));
        let extra = json!({"text": [line("Zone C", 5.0, 0.9)], "detections": []});
        assert!(same_answer(&a, &extra, TOL)
            .unwrap_err()
            .contains("/detections: present on one side only"));
        let failed = json!({"error": "node 'det' failed"});
        assert!(same_answer(&a, &failed, TOL).is_err());
    }

    #[test]
    fn too_few_frames_refuse_to_judge() {
        let dir = std::env::temp_dir().join(format!("int8-gate-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f000.jpg"), b"\xff\xd8\xff\xd9").unwrap();
        let err = read_frames(&dir).unwrap_err();
        assert!(
            matches!(err, GateError::TooFewFrames { found: 1, .. }),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(read_frames(&dir), Err(GateError::Frames { .. })));
    }
}
