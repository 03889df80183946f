//! The native box-tracking node (`kind = "track_boxes"`): a detector's boxes
//! on the frames it ran, and the last ones it found, moved with the scene, on
//! the frames it did not.
//!
//! Inputs, told apart by their keys: the boxes (`{"boxes": [{"points",
//! "score"}]}`, as `db_postprocess` gives them) when the detector ran, usually
//! taken as optional (`"found?"`), and a `scene_motion` verdict (`{"detect",
//! "cut", "transform", "width", "height"}`) on every frame. It reuses and
//! transforms its own previous output, so it keeps the key frame's boxes as
//! its session state:
//!
//! * With boxes: they are the new key boxes and are passed on. Each gets a
//!   `track` id: the id of the old key box it overlaps most once moved by
//!   the verdict's transform (axis-aligned IoU at least `min_iou`), or a new
//!   one. After a cut every box is new, so nothing read in the old scene can
//!   be carried into the new one by id.
//! * Without: the key boxes, moved by the transform, corners rounded to whole
//!   pixels (what the detector's boxes have), clipped to the frame; a box
//!   with less than half its area left inside the frame is dropped.
//!
//! Output: `{"boxes": [{"points", "score", "track"}]}` in the key boxes'
//! (reading) order; `text_crop` and `ocr_assemble` read it as they read the
//! detector's.

use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::scene_motion::Transform;
use super::{typed_config, NodeFailure};
use crate::value::Value;

fn default_min_iou() -> f32 {
    0.5
}
fn default_max_boxes() -> usize {
    256
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackBoxesConfig {
    /// Overlap (0..=1) a new box needs with a moved old one to keep its id.
    #[serde(default = "default_min_iou")]
    pub min_iou: f32,
    /// Most boxes kept (1..=4096); the rest of a frame's are dropped.
    #[serde(default = "default_max_boxes")]
    pub max_boxes: usize,
}

impl Default for TrackBoxesConfig {
    fn default() -> Self {
        TrackBoxesConfig {
            min_iou: default_min_iou(),
            max_boxes: default_max_boxes(),
        }
    }
}

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if !(1..=2).contains(&inputs) {
        return Err(
            "track_boxes takes a scene_motion verdict and (optionally) a detector's boxes".into(),
        );
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<TrackBoxesConfig, String> {
    let c: TrackBoxesConfig = typed_config(table)?;
    if !(c.min_iou.is_finite() && (0.0..=1.0).contains(&c.min_iou)) {
        return Err("min_iou must be 0..=1".into());
    }
    if !(1..=4096).contains(&c.max_boxes) {
        return Err("max_boxes must be 1..=4096".into());
    }
    Ok(c)
}

/// A box and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub track: u64,
    pub points: [[f32; 2]; 4],
    pub score: f64,
}

/// One session's key boxes.
#[derive(Default)]
pub struct State {
    key: Vec<Tracked>,
    /// The key frame's size: which key boxes the frame's edges cut.
    key_size: (f32, f32),
    next_track: u64,
}

/// A box within this many pixels of the frame's edge is cut by it.
const EDGE_PX: f32 = 3.0;

/// The fields of a `scene_motion` verdict this node reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Motion {
    pub cut: bool,
    pub transform: Option<Transform>,
    pub width: f32,
    pub height: f32,
}

impl Motion {
    fn parse(v: &Json) -> Result<Motion, String> {
        let num = |obj: &Json, key: &str| {
            obj.get(key)
                .and_then(Json::as_f64)
                .filter(|f| f.is_finite())
                .map(|f| f as f32)
                .ok_or_else(|| format!("the motion verdict lacks a numeric '{key}'"))
        };
        let transform = match v.get("transform") {
            None | Some(Json::Null) => None,
            Some(t) => Some(Transform {
                scale: num(t, "scale")?,
                dx: num(t, "dx")?,
                dy: num(t, "dy")?,
            }),
        };
        let (width, height) = (num(v, "width")?, num(v, "height")?);
        if width < 1.0 || height < 1.0 {
            return Err(format!("the motion verdict's frame is {width}x{height}"));
        }
        Ok(Motion {
            cut: v.get("cut").and_then(Json::as_bool).unwrap_or(false),
            transform,
            width,
            height,
        })
    }
}

fn bbox(p: &[[f32; 2]; 4]) -> [f32; 4] {
    let xs = p.iter().map(|q| q[0]);
    let ys = p.iter().map(|q| q[1]);
    [
        xs.clone().fold(f32::INFINITY, f32::min),
        ys.clone().fold(f32::INFINITY, f32::min),
        xs.fold(f32::NEG_INFINITY, f32::max),
        ys.fold(f32::NEG_INFINITY, f32::max),
    ]
}

fn area(b: [f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Axis-aligned intersection over union of two boxes' bounds.
pub fn iou(a: &[[f32; 2]; 4], b: &[[f32; 2]; 4]) -> f32 {
    let (a, b) = (bbox(a), bbox(b));
    let inter = area([
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    ]);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

fn moved(p: &[[f32; 2]; 4], t: Transform) -> [[f32; 2]; 4] {
    p.map(|[x, y]| {
        let (x, y) = t.apply(x, y);
        [x, y]
    })
}

/// New key boxes `found`, each given the id of the old key box it overlaps
/// most after `motion` (or a new id).
pub fn follow_found(
    config: &TrackBoxesConfig,
    state: &mut State,
    found: Vec<Found>,
    motion: &Motion,
) -> Vec<Tracked> {
    let predicted: Vec<(u64, [[f32; 2]; 4])> = match (motion.cut, motion.transform) {
        (false, Some(t)) => state
            .key
            .iter()
            .map(|k| (k.track, moved(&k.points, t)))
            .collect(),
        _ => Vec::new(),
    };
    let mut taken = vec![false; predicted.len()];
    let mut out = Vec::with_capacity(found.len().min(config.max_boxes));
    for (points, score) in found.into_iter().take(config.max_boxes) {
        let best = predicted
            .iter()
            .enumerate()
            .filter(|(k, _)| !taken[*k])
            .map(|(k, (track, p))| (k, *track, iou(&points, p)))
            .filter(|(_, _, overlap)| *overlap >= config.min_iou)
            .max_by(|a, b| a.2.total_cmp(&b.2));
        let track = match best {
            Some((k, track, _)) => {
                taken[k] = true;
                track
            }
            None => {
                state.next_track += 1;
                state.next_track
            }
        };
        out.push(Tracked {
            track,
            points,
            score,
        });
    }
    state.key = out.clone();
    state.key_size = (motion.width, motion.height);
    out
}

/// The key boxes moved by `t`, rounded, clipped to the frame, without those
/// mostly outside it. A side the key frame's edge cut (a line entering the
/// picture) stays on the frame's edge, so the line's crop grows as more of it
/// comes into view, and is read again.
pub fn follow_moved(state: &State, t: Transform, width: f32, height: f32) -> Vec<Tracked> {
    let (key_w, key_h) = state.key_size;
    state
        .key
        .iter()
        .filter_map(|k| {
            let b = bbox(&k.points);
            let mut p = moved(&k.points, t).map(|[x, y]| [x.round(), y.round()]);
            // Corners clockwise from the top-left: [tl, tr, br, bl].
            if b[0] <= EDGE_PX {
                p[0][0] = p[0][0].min(0.0);
                p[3][0] = p[3][0].min(0.0);
            }
            if b[2] >= key_w - 1.0 - EDGE_PX {
                p[1][0] = p[1][0].max(width - 1.0);
                p[2][0] = p[2][0].max(width - 1.0);
            }
            if b[1] <= EDGE_PX {
                p[0][1] = p[0][1].min(0.0);
                p[1][1] = p[1][1].min(0.0);
            }
            if b[3] >= key_h - 1.0 - EDGE_PX {
                p[2][1] = p[2][1].max(height - 1.0);
                p[3][1] = p[3][1].max(height - 1.0);
            }
            let whole = area(bbox(&p));
            let clipped = p.map(|[x, y]| [x.clamp(0.0, width - 1.0), y.clamp(0.0, height - 1.0)]);
            (area(bbox(&clipped)) * 2.0 >= whole && whole > 0.0).then_some(Tracked {
                track: k.track,
                points: clipped,
                score: k.score,
            })
        })
        .collect()
}

/// A box's corners and its detector score.
type Found = ([[f32; 2]; 4], f64);

fn parse_found(v: &Json) -> Result<Vec<Found>, String> {
    let points = super::text_crop::parse_boxes(v).map_err(|e| e.to_string())?;
    let scores = v.get("boxes").and_then(Json::as_array);
    Ok(points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let score = scores
                .and_then(|s| s.get(i))
                .and_then(|b| b.get("score"))
                .and_then(Json::as_f64)
                .unwrap_or(0.0);
            (p, score)
        })
        .collect())
}

/// A corner as the detector writes it: whole pixels as integers.
fn coordinate(v: f32) -> Json {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

pub(super) fn run(
    config: &TrackBoxesConfig,
    inputs: &[(String, Value)],
    state: &mut State,
) -> Result<Value, NodeFailure> {
    let fail = |e: String| NodeFailure::Node(e);
    let (mut found, mut motion) = (None, None);
    for (name, value) in inputs {
        match value {
            Value::Json(v) if v.get("boxes").is_some() && found.is_none() => found = Some(v),
            Value::Json(v) if v.get("detect").is_some() && motion.is_none() => motion = Some(v),
            other => {
                return Err(fail(format!(
                    "input '{name}' ({}) is neither boxes ({{\"boxes\": ...}}) nor a scene_motion verdict",
                    other.kind()
                )))
            }
        }
    }
    let motion = Motion::parse(motion.ok_or_else(|| fail("needs a scene_motion verdict".into()))?)
        .map_err(fail)?;
    let boxes = match found {
        Some(v) => {
            let found = parse_found(v).map_err(fail)?;
            follow_found(config, state, found, &motion)
        }
        None => {
            let t = motion.transform.ok_or_else(|| {
                fail("no boxes and no transform: the detector must run on this frame".into())
            })?;
            follow_moved(state, t, motion.width, motion.height)
        }
    };
    let boxes: Vec<Json> = boxes
        .iter()
        .map(|b| {
            let points: Vec<Json> = b
                .points
                .iter()
                .map(|[x, y]| json!([coordinate(*x), coordinate(*y)]))
                .collect();
            json!({"points": points, "score": b.score, "track": b.track})
        })
        .collect();
    Ok(Value::Json(json!({ "boxes": boxes })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: f32, y: f32, w: f32, h: f32) -> [[f32; 2]; 4] {
        [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
    }

    fn motion(t: Option<Transform>, cut: bool) -> Motion {
        Motion {
            cut,
            transform: t,
            width: 640.0,
            height: 480.0,
        }
    }

    fn shift(dx: f32, dy: f32) -> Transform {
        Transform { scale: 1.0, dx, dy }
    }

    #[test]
    fn boxes_keep_their_ids_across_a_shift_and_lose_them_after_a_cut() {
        let config = TrackBoxesConfig::default();
        let mut state = State::default();
        let first = follow_found(
            &config,
            &mut state,
            vec![
                (rect(10.0, 10.0, 200.0, 30.0), 0.9),
                (rect(10.0, 60.0, 150.0, 30.0), 0.8),
            ],
            &motion(None, true),
        );
        assert_eq!(
            first.iter().map(|b| b.track).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // Moved 20 px right: the same boxes, shifted, same ids.
        let moved = follow_moved(&state, shift(20.0, 3.0), 640.0, 480.0);
        assert_eq!(moved.len(), 2);
        assert_eq!(moved[0].points, rect(30.0, 13.0, 200.0, 30.0));
        assert_eq!(moved[1].track, 2);
        // The detector runs again: boxes near the moved ones keep their ids, a new one gets 3.
        let again = follow_found(
            &config,
            &mut state,
            vec![
                (rect(31.0, 12.0, 198.0, 31.0), 0.9),
                (rect(300.0, 300.0, 100.0, 30.0), 0.7),
                (rect(29.0, 63.0, 151.0, 30.0), 0.8),
            ],
            &motion(Some(shift(20.0, 3.0)), false),
        );
        assert_eq!(
            again.iter().map(|b| b.track).collect::<Vec<_>>(),
            vec![1, 3, 2]
        );
        // A cut: the same places, but every box is new.
        let cut = follow_found(
            &config,
            &mut state,
            vec![(rect(31.0, 12.0, 198.0, 31.0), 0.9)],
            &motion(Some(Transform::IDENTITY), true),
        );
        assert_eq!(cut[0].track, 4);
    }

    #[test]
    fn a_line_cut_by_the_frame_edge_stays_on_the_edge_as_the_scene_moves_in() {
        let config = TrackBoxesConfig::default();
        let mut state = State::default();
        follow_found(
            &config,
            &mut state,
            vec![
                (rect(400.0, 100.0, 239.0, 20.0), 0.9),
                (rect(100.0, 200.0, 100.0, 20.0), 0.9),
            ],
            &motion(None, true),
        );
        // The scene moves 30 px left: the first line's right end follows the frame's edge.
        let moved = follow_moved(&state, shift(-30.0, 0.0), 640.0, 480.0);
        assert_eq!(
            moved[0].points,
            [
                [370.0, 100.0],
                [639.0, 100.0],
                [639.0, 120.0],
                [370.0, 120.0]
            ]
        );
        assert_eq!(moved[1].points, rect(70.0, 200.0, 100.0, 20.0));
    }

    #[test]
    fn a_box_leaving_the_frame_is_clipped_then_dropped() {
        let config = TrackBoxesConfig::default();
        let mut state = State::default();
        follow_found(
            &config,
            &mut state,
            vec![(rect(500.0, 100.0, 100.0, 20.0), 0.9)],
            &motion(None, true),
        );
        let partly = follow_moved(&state, shift(80.0, 0.0), 640.0, 480.0);
        assert_eq!(partly.len(), 1, "60 of 100 px still inside");
        assert_eq!(partly[0].points[1], [639.0, 100.0]);
        assert!(follow_moved(&state, shift(120.0, 0.0), 640.0, 480.0).is_empty());
    }

    #[test]
    fn the_node_reads_its_inputs_by_their_keys_and_needs_a_transform_without_boxes() {
        let config = TrackBoxesConfig::default();
        let mut state = State::default();
        let verdict = |detect: bool, t: Json| {
            Value::Json(
                json!({"detect": detect, "cut": false, "transform": t, "width": 640, "height": 480}),
            )
        };
        let found = Value::Json(
            json!({"boxes": [{"points": [[4, 14], [56, 14], [56, 36], [4, 36]], "score": 0.8}]}),
        );
        let out = run(
            &config,
            &[
                ("motion".into(), verdict(true, Json::Null)),
                ("found".into(), found),
            ],
            &mut state,
        );
        let Ok(Value::Json(out)) = out else {
            panic!("{out:?}")
        };
        assert_eq!(
            out["boxes"][0]["points"],
            json!([[4, 14], [56, 14], [56, 36], [4, 36]])
        );
        assert_eq!(out["boxes"][0]["track"], 1);
        let moved = run(
            &config,
            &[(
                "motion".into(),
                verdict(false, json!({"scale": 1.0, "dx": 2.4, "dy": -1.0})),
            )],
            &mut state,
        );
        let Ok(Value::Json(moved)) = moved else {
            panic!("{moved:?}")
        };
        assert_eq!(
            moved["boxes"][0]["points"],
            json!([[6, 13], [58, 13], [58, 35], [6, 35]])
        );
        let empty = Value::Json(
            json!({"detect": false, "cut": false, "width": 0, "height": 480,
            "transform": {"scale": 1.0, "dx": 0.0, "dy": 0.0}}),
        );
        assert!(run(&config, &[("motion".into(), empty)], &mut state).is_err());
        let lost = run(
            &config,
            &[("motion".into(), verdict(false, Json::Null))],
            &mut state,
        );
        assert!(matches!(lost, Err(NodeFailure::Node(e)) if e.contains("no transform")));
    }
}
