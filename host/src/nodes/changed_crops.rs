//! The native changed-crops node (`kind = "changed_crops"`): of a frame's
//! text crops, only those whose pixels changed since their line was last
//! read go on to the recogniser.
//!
//! Inputs: the crops (`text_crop` with `widths = "own"`: one `[1, C, H, W]`
//! tensor per box) and the boxes they were cut from, each with a `track` id
//! (`track_boxes`). For each track the node keeps, as session state, a grey
//! copy of the crop its line was last read from. A crop is *unchanged* when
//! its width is within 15% of that copy's and, once the copy is stretched to
//! its width and aligned (the best of +-4 pixels across, +-2 down), every
//! pixel of each lies within the range of the other's values one pixel
//! around it, up to `level` grey levels on average over every 4x4 block. A
//! box moved by part of a pixel moves its edges by part of a pixel, to values
//! between their neighbours'; a changed glyph (8 become 9: one stroke gone)
//! leaves ink with nothing like it nearby. A crop compares only with the copy from when its line was
//! read, not with the previous frame's, so a slow drift cannot add up to an
//! unread change.
//!
//! Output: the changed crops, in order, under their own names (what the
//! recogniser runs on; none at all on a frame where nothing changed, so a
//! `when = "changed.x"` skips it), and `plan`, an i64 tensor `[N, 2]`: each
//! box's track and whether its crop is among those sent on (1) or its line
//! can be reused (0). `line_cache` pairs the recogniser's lines back with it.
//! Tracks not on this frame are forgotten; the copies are capped at
//! `max_cached_kib` a session (a crop past it is always sent on).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{typed_config, NodeFailure};
use crate::value::{Tensor, TensorData, Value};

/// The name of the plan tensor.
pub const PLAN: &str = "plan";

fn default_level() -> f32 {
    36.0
}
fn default_range() -> [f32; 2] {
    [-1.0, 1.0]
}
fn default_max_cached_kib() -> usize {
    4096
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChangedCropsConfig {
    /// Grey levels (0..=255) by which a 4x4 block must differ, on average, to count as changed.
    #[serde(default = "default_level")]
    pub level: f32,
    /// The crop values that stand for black and white (`text_crop`'s
    /// normalisation; PaddleOCR's recogniser takes -1..1).
    #[serde(default = "default_range")]
    pub range: [f32; 2],
    /// Most KiB of crop copies one session keeps (1..=65536).
    #[serde(default = "default_max_cached_kib")]
    pub max_cached_kib: usize,
}

impl Default for ChangedCropsConfig {
    fn default() -> Self {
        ChangedCropsConfig {
            level: default_level(),
            range: default_range(),
            max_cached_kib: default_max_cached_kib(),
        }
    }
}

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if inputs != 2 {
        return Err(
            "changed_crops takes two inputs: the text crops and their tracked boxes".into(),
        );
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<ChangedCropsConfig, String> {
    let c: ChangedCropsConfig = typed_config(table)?;
    if !(c.level.is_finite() && (0.0..=255.0).contains(&c.level)) {
        return Err("level must be 0..=255".into());
    }
    if !(c.range.iter().all(|v| v.is_finite()) && c.range[1] > c.range[0]) {
        return Err("range must be [black, white] with white > black".into());
    }
    if !(1..=65536).contains(&c.max_cached_kib) {
        return Err("max_cached_kib must be 1..=65536".into());
    }
    Ok(c)
}

/// A crop in grey, 0..=255, at the crop's own size.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    pub width: usize,
    pub height: usize,
    pub px: Vec<u8>,
}

impl Copy {
    /// From one `[1, C, H, W]` crop whose values run from `range[0]` (black) to `range[1]`.
    pub fn of(crop: &Tensor, range: [f32; 2]) -> Result<Copy, String> {
        let values = crop.f32()?;
        let &[1, c, h, w] = crop.shape.as_slice() else {
            return Err(format!(
                "crop '{}' has shape {:?}; one [1, C, H, W] tensor per box is needed (text_crop widths = \"own\")",
                crop.name, crop.shape
            ));
        };
        let (c, h, w) = (c as usize, h as usize, w as usize);
        if c == 0 || !crop.is_consistent() {
            return Err(format!("crop '{}' is malformed", crop.name));
        }
        let scale = 255.0 / (range[1] - range[0]) / c as f32;
        let px = (0..h * w)
            .map(|i| {
                let sum: f32 = (0..c).map(|ch| values[ch * h * w + i] - range[0]).sum();
                (sum * scale).round().clamp(0.0, 255.0) as u8
            })
            .collect();
        Ok(Copy {
            width: w,
            height: h,
            px,
        })
    }

    /// This copy stretched (or squeezed) to `width` columns, linearly.
    fn stretched(&self, width: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(width * self.height);
        let ratio = self.width as f32 / width.max(1) as f32;
        for y in 0..self.height {
            let row = &self.px[y * self.width..(y + 1) * self.width];
            for x in 0..width {
                let sx = ((x as f32 + 0.5) * ratio - 0.5).clamp(0.0, (self.width - 1) as f32);
                let x0 = sx.floor() as usize;
                let x1 = (x0 + 1).min(self.width - 1);
                let f = sx - x0 as f32;
                out.push(row[x0] as f32 * (1.0 - f) + row[x1] as f32 * f);
            }
        }
        out
    }
}

/// Crop pixels searched each way to align two copies (x, y).
const ALIGN: (isize, isize) = (4, 2);
/// Block side in crop pixels.
const BLOCK: isize = 4;

/// Whether `new` shows something other than `old` (see the module doc).
pub fn changed(old: &Copy, new: &Copy, level: f32) -> bool {
    if old.height != new.height || old.width == 0 || new.width == 0 || new.height == 0 {
        return true;
    }
    let (a, b) = (old.width as f32, new.width as f32);
    if (a - b).abs() > 0.15 * a.max(b) {
        return true;
    }
    let old = old.stretched(new.width);
    let (w, h) = (new.width as isize, new.height as isize);
    let o = |x: isize, y: isize| old[(y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) as usize];
    let n =
        |x: isize, y: isize| new.px[(y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) as usize] as f32;
    // The alignment with the least mean absolute difference (every other pixel).
    let mut best = (0isize, 0isize, f32::INFINITY);
    for oy in -ALIGN.1..=ALIGN.1 {
        for ox in -ALIGN.0..=ALIGN.0 {
            let (mut sum, mut count) = (0f32, 0usize);
            for y in (ALIGN.1..h - ALIGN.1).step_by(2) {
                for x in (ALIGN.0..w - ALIGN.0).step_by(2) {
                    sum += (n(x, y) - o(x + ox, y + oy)).abs();
                    count += 1;
                }
            }
            let mean = if count > 0 { sum / count as f32 } else { 0.0 };
            if mean < best.2 {
                best = (ox, oy, mean);
            }
        }
    }
    let (ox, oy, _) = best;
    // Each pixel against the range of the other copy's values within one
    // pixel, both ways: an edge moved by part of a pixel has a value between
    // its neighbours' there; ink where the other copy has none nearby (a
    // changed glyph, a stroke gone) lies far outside.
    let near = |x: isize, y: isize, f: &dyn Fn(isize, isize) -> f32, v: f32| {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for dy in -1..=1 {
            for dx in -1..=1 {
                let u = f(x + dx, y + dy);
                lo = lo.min(u);
                hi = hi.max(u);
            }
        }
        (lo - v).max(v - hi).max(0.0)
    };
    let (x0, x1) = (ox.max(0), w + ox.min(0));
    let (y0, y1) = (oy.max(0), h + oy.min(0));
    let mut by = y0;
    while by < y1 {
        let mut bx = x0;
        while bx < x1 {
            let (mut sum, mut count) = (0f32, 0usize);
            for y in by..(by + BLOCK).min(y1) {
                for x in bx..(bx + BLOCK).min(x1) {
                    // new(x, y) matches old(x + ox, y + oy).
                    let there = near(x + ox, y + oy, &o, n(x, y));
                    let back = near(x, y, &n, o(x + ox, y + oy));
                    sum += there.max(back);
                    count += 1;
                }
            }
            if count * 2 >= (BLOCK * BLOCK) as usize && sum / count as f32 > level {
                return true;
            }
            bx += BLOCK;
        }
        by += BLOCK;
    }
    false
}

/// One session's copies, by track.
#[derive(Default)]
pub struct State {
    copies: HashMap<u64, Copy>,
    bytes: usize,
}

/// Which of `tracks` (with their crops) must be read again; updates the copies.
pub fn select(
    config: &ChangedCropsConfig,
    state: &mut State,
    crops: &[Tensor],
    tracks: &[u64],
) -> Result<Vec<bool>, String> {
    if crops.len() != tracks.len() {
        return Err(format!(
            "{} crops but {} boxes: both must come from the same frame",
            crops.len(),
            tracks.len()
        ));
    }
    let mut fresh = Vec::with_capacity(crops.len());
    let mut seen = HashMap::with_capacity(tracks.len());
    for (crop, &track) in crops.iter().zip(tracks) {
        let copy = Copy::of(crop, config.range)?;
        let again = match state.copies.get(&track) {
            Some(old) => changed(old, &copy, config.level),
            None => true,
        };
        if seen.insert(track, ()).is_some() {
            return Err(format!("track {track} appears twice on one frame"));
        }
        if again {
            let size = copy.px.len();
            if let Some(old) = state.copies.remove(&track) {
                state.bytes -= old.px.len();
            }
            if state.bytes + size <= config.max_cached_kib << 10 {
                state.bytes += size;
                state.copies.insert(track, copy);
            }
        }
        fresh.push(again);
    }
    // Forget the tracks that left.
    let bytes = &mut state.bytes;
    state.copies.retain(|track, copy| {
        let keep = seen.contains_key(track);
        if !keep {
            *bytes -= copy.px.len();
        }
        keep
    });
    Ok(fresh)
}

fn tracks_of(boxes: &serde_json::Value) -> Result<Vec<u64>, String> {
    boxes
        .get("boxes")
        .and_then(serde_json::Value::as_array)
        .ok_or("the boxes input has no \"boxes\" array")?
        .iter()
        .enumerate()
        .map(|(i, b)| {
            b.get("track")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("box {i} has no \"track\" id (boxes come from track_boxes)"))
        })
        .collect()
}

pub(super) fn run(
    config: &ChangedCropsConfig,
    inputs: &[(String, Value)],
    state: &mut State,
) -> Result<Value, NodeFailure> {
    let fail = NodeFailure::Node;
    let (mut crops, mut boxes) = (None, None);
    for (name, value) in inputs {
        match value {
            Value::Tensors(ts) if crops.is_none() => crops = Some(ts),
            Value::Json(v) if boxes.is_none() => boxes = Some(v),
            other => {
                return Err(fail(format!(
                    "input '{name}' ({}) is neither the crops (tensors) nor the boxes (JSON)",
                    other.kind()
                )))
            }
        }
    }
    let (Some(crops), Some(boxes)) = (crops, boxes) else {
        return Err(fail("needs the text crops and their tracked boxes".into()));
    };
    if crops.iter().any(|t| t.name == PLAN) {
        return Err(fail(format!(
            "a crop is named '{PLAN}', the name of this node's own output"
        )));
    }
    let tracks = tracks_of(boxes).map_err(fail)?;
    // No boxes: text_crop gives one empty [0, C, H, W] batch, which is no crop.
    let crops: Vec<Tensor> = crops
        .iter()
        .filter(|t| t.shape.first() != Some(&0))
        .cloned()
        .collect();
    let fresh = select(config, state, &crops, &tracks).map_err(fail)?;
    let mut out: Vec<Tensor> = crops
        .iter()
        .zip(&fresh)
        .filter(|(_, f)| **f)
        .map(|(t, _)| t.clone())
        .collect();
    let plan: Vec<i64> = tracks
        .iter()
        .zip(&fresh)
        .flat_map(|(&t, &f)| [t as i64, i64::from(f)])
        .collect();
    out.push(Tensor {
        name: PLAN.into(),
        shape: vec![tracks.len() as u32, 2],
        data: TensorData::I64(Arc::new(plan)),
    });
    Ok(Value::Tensors(Arc::new(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crop `[1, 3, 48, w]` of dark strokes on light, normalised to -1..1:
    /// `ink(x, y)` says where the strokes are; each pixel is the share of 4x4
    /// points inside them, as a resampled camera image is anti-aliased.
    fn crop(w: usize, ink: impl Fn(f32, f32) -> bool) -> Tensor {
        let mut v = Vec::with_capacity(3 * 48 * w);
        for _ in 0..3 {
            for y in 0..48 {
                for x in 0..w {
                    let inked = (0..16)
                        .filter(|k| {
                            let (sx, sy) = ((k % 4) as f32 / 4.0, (k / 4) as f32 / 4.0);
                            ink(x as f32 + sx, y as f32 + sy)
                        })
                        .count() as f32
                        / 16.0;
                    v.push(0.9 - 1.7 * inked);
                }
            }
        }
        Tensor {
            name: "x".into(),
            shape: vec![1, 3, 48, w as u32],
            data: TensorData::new(v),
        }
    }

    /// Vertical strokes 3 px wide every 11 px from `phase`, between rows 10 and 38:
    /// a line of text as far as block means care; `skip` leaves one stroke out.
    fn strokes(phase: f32, skip: Option<usize>) -> impl Fn(f32, f32) -> bool {
        move |x, y| {
            let k = ((x - phase) / 11.0).floor();
            let inside = (x - phase) - k * 11.0 < 3.0 && (10.0..38.0).contains(&y) && x >= phase;
            inside && skip != Some(k as usize)
        }
    }

    fn copy(t: &Tensor) -> Copy {
        Copy::of(t, [-1.0, 1.0]).unwrap_or(Copy {
            width: 0,
            height: 0,
            px: vec![],
        })
    }

    #[test]
    fn a_crop_shifted_by_a_few_pixels_is_unchanged_and_a_missing_stroke_is_not() {
        let old = copy(&crop(240, strokes(4.0, None)));
        assert_eq!((old.width, old.height), (240, 48));
        for phase in [4.0, 4.5, 5.0, 6.0, 7.0] {
            let new = copy(&crop(240, strokes(phase, None)));
            assert!(!changed(&old, &new, 36.0), "shifted to phase {phase}");
        }
        // One stroke of the line gone: a character changed.
        let new = copy(&crop(240, strokes(4.0, Some(9))));
        assert!(changed(&old, &new, 36.0));
        // Empty crops are never the same line.
        let empty = Copy {
            width: 10,
            height: 0,
            px: vec![],
        };
        assert!(changed(&empty, &empty, 36.0));
        // Much wider: another line.
        let new = copy(&crop(320, strokes(4.0, None)));
        assert!(changed(&old, &new, 36.0));
        // A little wider (the box refitted): the same line, stretched.
        let stretched = copy(&crop(250, |x, y| strokes(4.0, None)(x * 240.0 / 250.0, y)));
        assert!(!changed(&old, &stretched, 36.0));
    }

    #[test]
    fn only_changed_or_new_tracks_are_sent_on_and_gone_tracks_are_forgotten() {
        let config = ChangedCropsConfig::default();
        let mut state = State::default();
        let a = crop(200, strokes(4.0, None));
        let b = crop(120, strokes(2.0, None));
        assert_eq!(
            select(&config, &mut state, &[a.clone(), b.clone()], &[1, 2]),
            Ok(vec![true, true])
        );
        assert_eq!(
            select(&config, &mut state, &[a.clone(), b.clone()], &[1, 2]),
            Ok(vec![false, false])
        );
        let b2 = crop(120, strokes(2.0, Some(3)));
        assert_eq!(
            select(&config, &mut state, &[a.clone(), b2.clone()], &[1, 2]),
            Ok(vec![false, true])
        );
        // Compared with the copy from when it was read, not with the last frame's.
        assert_eq!(
            select(&config, &mut state, &[a.clone(), b2], &[1, 2]),
            Ok(vec![false, false])
        );
        // Track 1 leaves and comes back: read again.
        assert_eq!(
            select(&config, &mut state, std::slice::from_ref(&b), &[2]),
            Ok(vec![true])
        );
        assert_eq!(
            select(&config, &mut state, &[a, b], &[1, 2]),
            Ok(vec![true, false])
        );
        assert!(select(&config, &mut state, &[crop(100, |_, _| false)], &[1, 2]).is_err());
    }

    #[test]
    fn no_boxes_and_an_empty_batch_send_nothing_on() {
        let config = ChangedCropsConfig::default();
        let mut state = State::default();
        let empty = Tensor {
            name: "x".into(),
            shape: vec![0, 3, 48, 8],
            data: TensorData::new(Vec::<f32>::new()),
        };
        let out = run(
            &config,
            &[
                ("crop".into(), Value::Tensors(Arc::new(vec![empty]))),
                (
                    "boxes".into(),
                    Value::Json(serde_json::json!({ "boxes": [] })),
                ),
            ],
            &mut state,
        );
        let Ok(Value::Tensors(out)) = out else {
            panic!("{out:?}")
        };
        let names: Vec<&str> = out.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec![PLAN]);
        assert_eq!(out[0].shape, vec![0, 2]);
    }

    #[test]
    fn the_cache_is_capped() {
        let config = ChangedCropsConfig {
            max_cached_kib: 16,
            ..ChangedCropsConfig::default()
        };
        let mut state = State::default();
        // Each copy is 48 x 200 bytes: only one fits in 16 KiB, not two.
        let lines: Vec<Tensor> = (0..3).map(|k| crop(200, strokes(k as f32, None))).collect();
        assert_eq!(
            select(&config, &mut state, &lines, &[1, 2, 3]),
            Ok(vec![true, true, true])
        );
        assert!(state.bytes <= 16 << 10);
        let again = select(&config, &mut state, &lines, &[1, 2, 3]);
        assert_eq!(again, Ok(vec![false, true, true]));
    }
}
