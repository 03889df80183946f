//! The native scene-motion node (`kind = "scene_motion"`): how the picture
//! moved since the session's last fully processed frame (its key frame), and
//! whether what is in it can be carried over from that frame or must be
//! looked at again.
//!
//! Consecutive frames of a camera stream are mostly the same scene, shifted a
//! little, so a pipeline that knows the shift can move last frame's boxes
//! instead of running a detector. Everything here works on thumbnails (block
//! means of luma, `thumb` pixels a side, default 4), so a 640x480 frame costs
//! one pass over its pixels plus work on 160x120 values:
//!
//! 1. **Motion**: patches of the key thumbnail with texture are searched for
//!    in the frame's thumbnail, around where the previous frame's transform
//!    puts them, coarse to fine (half resolution, then full, then a sub-pixel
//!    parabola); a similarity transform (scale and shift, no rotation:
//!    `x' = scale * x + dx`) is fitted to the matches by least squares, and
//!    refitted without the matches it explains worst. Fewer than three
//!    agreeing patches leave the motion unknown.
//! 2. **Check**: each pixel of the frame's thumbnail is compared with the
//!    key thumbnail where that transform (or none, when the motion is
//!    unknown) takes it from: how far the value lies outside the range of the
//!    key's values within a pixel of there. Content that only moved, by any
//!    fraction of a pixel, lies in that range; new content (a word written,
//!    a line appearing) lies outside. A block of 8x8 thumbnail pixels differs
//!    when its mean distance exceeds `change_level` grey levels and three
//!    times the median block's (sensor noise and lighting raise every block
//!    alike; new content raises a few). Parts of the frame the key frame did
//!    not see are the exposed fraction. Changes inside a line that keep its
//!    ink in place (one digit for another) may pass this check: the
//!    pipeline's per-line crop comparison (`changed_crops`) is what catches
//!    those.
//! 3. **Decision**: `detect` is true (the expensive branch must run, and this
//!    frame becomes the key frame) on the first frame, a change of frame
//!    size, a frame too small to track (under 24 thumbnail pixels a side),
//!    a cut (`cut_fraction` of the blocks differ), any differing block
//!    (something moved or changed in the scene), an exposed fraction over
//!    `max_exposed`, a scale change over `max_scale`, motion it could not
//!    estimate while the picture is not still, or `max_frames` frames since
//!    the key frame. Otherwise the key frame's results, moved by `transform`,
//!    describe this frame.
//!
//! Output (JSON): `{"detect", "reason", "cut", "transform": {"scale", "dx",
//! "dy"} or null, "width", "height", "frames_since_key", "exposed",
//! "changed_blocks"}`; `transform` maps key-frame pixels to this frame's, and
//! is the motion since the previous key frame even on a frame that becomes
//! the new key (so boxes found on it can be matched to the old ones).
//! The state is the key thumbnail and the last transform: a few tens of KiB
//! whatever the session's length.

use serde::Deserialize;
use serde_json::json;

use super::{typed_config, NodeFailure};
use crate::value::{Image, PixelFormat, Value};

fn default_thumb() -> u32 {
    4
}
fn default_max_frames() -> u32 {
    30
}
fn default_max_exposed() -> f32 {
    0.05
}
fn default_max_scale() -> f32 {
    0.15
}
fn default_change_level() -> f32 {
    10.0
}
fn default_cut_fraction() -> f32 {
    0.3
}
fn default_search_px() -> f32 {
    48.0
}

/// Tuning, in frame pixels and grey levels; each documented in the module doc.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SceneMotionConfig {
    /// Thumbnail block size in frame pixels (2..=16).
    #[serde(default = "default_thumb")]
    pub thumb: u32,
    /// At most this many frames follow a key frame before the next (1..=10000).
    #[serde(default = "default_max_frames")]
    pub max_frames: u32,
    /// Largest share of the frame the key frame did not see (0..=1).
    #[serde(default = "default_max_exposed")]
    pub max_exposed: f32,
    /// Largest scale change from the key frame (|scale - 1|, 0..=1).
    #[serde(default = "default_max_scale")]
    pub max_scale: f32,
    /// Grey levels (0..=255) a block must differ by to count as changed.
    #[serde(default = "default_change_level")]
    pub change_level: f32,
    /// Share of changed blocks that makes a cut (0..=1).
    #[serde(default = "default_cut_fraction")]
    pub cut_fraction: f32,
    /// How far (frame pixels) the picture may move between two frames
    /// beyond what the previous frame's motion predicts (1..=256).
    #[serde(default = "default_search_px")]
    pub search_px: f32,
}

impl Default for SceneMotionConfig {
    fn default() -> Self {
        SceneMotionConfig {
            thumb: default_thumb(),
            max_frames: default_max_frames(),
            max_exposed: default_max_exposed(),
            max_scale: default_max_scale(),
            change_level: default_change_level(),
            cut_fraction: default_cut_fraction(),
            search_px: default_search_px(),
        }
    }
}

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if inputs != 1 {
        return Err("scene_motion takes exactly one input, the decoded image".into());
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<SceneMotionConfig, String> {
    let c: SceneMotionConfig = typed_config(table)?;
    let within = |v: f32, lo: f32, hi: f32| v.is_finite() && (lo..=hi).contains(&v);
    if !(2..=16).contains(&c.thumb) {
        return Err("thumb must be 2..=16".into());
    }
    if !(1..=10_000).contains(&c.max_frames) {
        return Err("max_frames must be 1..=10000".into());
    }
    if !within(c.max_exposed, 0.0, 1.0)
        || !within(c.max_scale, 0.0, 1.0)
        || !within(c.cut_fraction, 0.0, 1.0)
    {
        return Err("max_exposed, max_scale and cut_fraction must be 0..=1".into());
    }
    if !within(c.change_level, 0.0, 255.0) {
        return Err("change_level must be 0..=255".into());
    }
    if !within(c.search_px, 1.0, 256.0) {
        return Err("search_px must be 1..=256".into());
    }
    Ok(c)
}

/// A similarity transform without rotation: `x' = scale * x + dx`, `y' = scale * y + dy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    pub scale: f32,
    pub dx: f32,
    pub dy: f32,
}

impl Transform {
    pub const IDENTITY: Transform = Transform {
        scale: 1.0,
        dx: 0.0,
        dy: 0.0,
    };

    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (self.scale * x + self.dx, self.scale * y + self.dy)
    }

    /// The same motion in coordinates `factor` times larger.
    #[cfg(test)]
    fn scaled(&self, factor: f32) -> Transform {
        Transform {
            scale: self.scale,
            dx: self.dx * factor,
            dy: self.dy * factor,
        }
    }
}

/// Block means of luma: a frame seen from afar.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumb {
    pub width: usize,
    pub height: usize,
    pub px: Vec<f32>,
}

impl Thumb {
    /// `image` reduced to `block` x `block` means of its luma (the right and
    /// bottom remainders left out).
    pub fn of(image: &Image, block: usize) -> Thumb {
        let (w, h) = (image.width as usize / block, image.height as usize / block);
        let bpp = image.format.bytes_per_pixel();
        let stride = image.width as usize * bpp;
        let mut sums = vec![0u32; w];
        let mut px = Vec::with_capacity(w * h);
        let norm = 1.0 / (block * block * 256) as f32;
        for ty in 0..h {
            sums.iter_mut().for_each(|s| *s = 0);
            for row in image.data[ty * block * stride..].chunks(stride).take(block) {
                for (tx, sum) in sums.iter_mut().enumerate() {
                    let cells = &row[tx * block * bpp..(tx + 1) * block * bpp];
                    *sum += cells
                        .chunks_exact(bpp)
                        .map(|p| luma(image.format, p))
                        .sum::<u32>();
                }
            }
            px.extend(sums.iter().map(|&s| s as f32 * norm));
        }
        Thumb {
            width: w,
            height: h,
            px,
        }
    }

    /// 2x2 means: the coarse level of the motion search.
    fn halved(&self) -> Thumb {
        let (w, h) = (self.width / 2, self.height / 2);
        let mut px = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let at = |dx: usize, dy: usize| self.px[(2 * y + dy) * self.width + 2 * x + dx];
                px.push((at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1)) * 0.25);
            }
        }
        Thumb {
            width: w,
            height: h,
            px,
        }
    }

    fn get(&self, x: isize, y: isize) -> Option<f32> {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return None;
        }
        Some(self.px[y as usize * self.width + x as usize])
    }

    /// The least and greatest value within a pixel of `(x, y)` (pixel-centre
    /// coordinates: pixel i's centre is i), or `None` outside the thumbnail.
    /// A picture moved by part of a pixel (or by a little more than the
    /// estimate says) has values in that range; new content has not.
    fn range_near(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        if !(x >= 0.0 && y >= 0.0 && x <= (self.width - 1) as f32 && y <= (self.height - 1) as f32)
        {
            return None;
        }
        let (cx, cy) = (x.round() as usize, y.round() as usize);
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for yy in cy.saturating_sub(1)..=(cy + 1).min(self.height - 1) {
            for &v in &self.px[yy * self.width + cx.saturating_sub(1)
                ..=yy * self.width + (cx + 1).min(self.width - 1)]
            {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        Some((lo, hi))
    }
}

/// Luma scaled by 256 (BT.601 weights).
fn luma(format: PixelFormat, p: &[u8]) -> u32 {
    let (r, g, b) = match format {
        PixelFormat::Rgb8 | PixelFormat::Rgba8 => (p[0], p[1], p[2]),
        PixelFormat::Bgr8 => (p[2], p[1], p[0]),
        PixelFormat::Gray8 => return p[0] as u32 * 256,
    };
    77 * r as u32 + 150 * g as u32 + 29 * b as u32
}

/// Patch side in thumbnail pixels, and the least standard deviation (grey
/// levels) a patch needs for its match to mean anything.
const PATCH: usize = 12;
const MIN_PATCH_STD: f32 = 6.0;
/// Blocks of the change check, in thumbnail pixels.
const BLOCK: usize = 8;

/// The mean absolute difference of the key patch at `(cx, cy)` (its centre,
/// side `side`) and the frame sampled where `t` moved it, plus `(ox, oy)`;
/// `None` when under 70% of it falls inside the frame.
fn patch_cost(
    key: &Thumb,
    cur: &Thumb,
    (cx, cy): (usize, usize),
    side: usize,
    t: Transform,
    (ox, oy): (isize, isize),
) -> Option<f32> {
    let half = side as isize / 2;
    let (mut sum, mut n) = (0f32, 0usize);
    for v in -half..half {
        for u in -half..half {
            let (kx, ky) = (cx as isize + u, cy as isize + v);
            let Some(k) = key.get(kx, ky) else { continue };
            let (x, y) = t.apply(kx as f32, ky as f32);
            let Some(c) = cur.get(x.round() as isize + ox, y.round() as isize + oy) else {
                continue;
            };
            sum += (k - c).abs();
            n += 1;
        }
    }
    (n * 10 >= side * side * 7).then(|| sum / n as f32)
}

/// The offset (within `radius`) that best matches the key patch, by exhaustive search.
fn best_offset(
    key: &Thumb,
    cur: &Thumb,
    centre: (usize, usize),
    side: usize,
    t: Transform,
    around: (isize, isize),
    radius: isize,
) -> Option<((isize, isize), f32)> {
    let mut best: Option<((isize, isize), f32)> = None;
    for oy in around.1 - radius..=around.1 + radius {
        for ox in around.0 - radius..=around.0 + radius {
            if let Some(cost) = patch_cost(key, cur, centre, side, t, (ox, oy)) {
                if best.is_none_or(|(_, b)| cost < b) {
                    best = Some(((ox, oy), cost));
                }
            }
        }
    }
    best
}

/// Where between three neighbouring costs the least lies, as an offset in
/// -0.5..=0.5: the meeting point of two lines of equal and opposite slope
/// (a sum of absolute differences is V-shaped near its least, so a parabola
/// would pull every estimate toward the whole pixel).
fn subpixel(left: Option<f32>, mid: f32, right: Option<f32>) -> f32 {
    match (left, right) {
        (Some(l), Some(r)) => {
            let rise = l.max(r) - mid;
            if rise > 1e-6 {
                (0.5 * (l - r) / rise).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        }
        _ => 0.0,
    }
}

fn std_dev(t: &Thumb, (cx, cy): (usize, usize), side: usize) -> f32 {
    let half = side / 2;
    let vals: Vec<f32> = (cy - half..cy + half)
        .flat_map(|y| (cx - half..cx + half).map(move |x| (x, y)))
        .map(|(x, y)| t.px[y * t.width + x])
        .collect();
    let mean = vals.iter().sum::<f32>() / vals.len() as f32;
    (vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / vals.len() as f32).sqrt()
}

/// A point of the key frame and where it was found in this one.
type Match = ((f32, f32), (f32, f32));

/// Least-squares scale and shift taking each match's first point to its second.
fn fit(pairs: &[Match]) -> Option<Transform> {
    let n = pairs.len() as f32;
    if pairs.len() < 2 {
        return None;
    }
    let (mut fx, mut fy, mut tx, mut ty) = (0.0, 0.0, 0.0, 0.0);
    for ((a, b), (c, d)) in pairs {
        fx += a;
        fy += b;
        tx += c;
        ty += d;
    }
    let (fx, fy, tx, ty) = (fx / n, fy / n, tx / n, ty / n);
    let (mut num, mut den) = (0.0, 0.0);
    for ((a, b), (c, d)) in pairs {
        num += (a - fx) * (c - tx) + (b - fy) * (d - ty);
        den += (a - fx) * (a - fx) + (b - fy) * (b - fy);
    }
    let scale = if den > 1.0 { num / den } else { 1.0 };
    if !(0.5..=2.0).contains(&scale) {
        return None;
    }
    Some(Transform {
        scale,
        dx: tx - scale * fx,
        dy: ty - scale * fy,
    })
}

/// A key frame's thumbnail with what the motion search derives from it once,
/// not on every frame that follows: its half-resolution level and the
/// centres of its patches with texture enough to be found again.
pub struct KeyFrame {
    pub thumb: Thumb,
    half: Thumb,
    patches: Vec<(usize, usize)>,
}

impl KeyFrame {
    pub fn new(thumb: Thumb) -> KeyFrame {
        let (cols, rows) = (6usize, 5usize);
        let mut patches = Vec::new();
        if thumb.width >= 2 * PATCH && thumb.height >= 2 * PATCH {
            for r in 0..rows {
                for c in 0..cols {
                    let cx = PATCH / 2 + (thumb.width - PATCH) * (2 * c + 1) / (2 * cols);
                    let cy = PATCH / 2 + (thumb.height - PATCH) * (2 * r + 1) / (2 * rows);
                    if std_dev(&thumb, (cx, cy), PATCH) >= MIN_PATCH_STD {
                        patches.push((cx, cy));
                    }
                }
            }
        }
        KeyFrame {
            half: thumb.halved(),
            thumb,
            patches,
        }
    }
}

/// The transform taking `key` to `cur` in thumbnail pixels (pixel centres),
/// searched around `guess`, or `None` when too few textured patches agree.
pub fn estimate(key: &KeyFrame, cur: &Thumb, guess: Transform, radius: usize) -> Option<Transform> {
    if key.patches.is_empty() {
        return None;
    }
    let (key2, thumb) = (&key.half, &key.thumb);
    let cur2 = cur.halved();
    let guess2 = Transform {
        scale: guess.scale,
        dx: guess.dx * 0.5,
        dy: guess.dy * 0.5,
    };
    let mut pairs = Vec::new();
    let coarse_radius = (radius / 2).max(1) as isize;
    for &(cx, cy) in &key.patches {
        // Coarse: half resolution, the whole search radius.
        let Some(((ox2, oy2), _)) = best_offset(
            key2,
            &cur2,
            (cx / 2, cy / 2),
            PATCH / 2,
            guess2,
            (0, 0),
            coarse_radius,
        ) else {
            continue;
        };
        // Fine: full resolution, around the coarse match.
        let Some(((ox, oy), cost)) =
            best_offset(thumb, cur, (cx, cy), PATCH, guess, (2 * ox2, 2 * oy2), 2)
        else {
            continue;
        };
        let at = |dx: isize, dy: isize| {
            patch_cost(thumb, cur, (cx, cy), PATCH, guess, (ox + dx, oy + dy))
        };
        let sx = subpixel(at(-1, 0), cost, at(1, 0));
        let sy = subpixel(at(0, -1), cost, at(0, 1));
        let (px, py) = guess.apply(cx as f32, cy as f32);
        let to = (px.round() + ox as f32 + sx, py.round() + oy as f32 + sy);
        pairs.push(((cx as f32, cy as f32), to));
    }
    let need = 3.max(key.patches.len() / 2);
    if pairs.len() < need {
        return None;
    }
    let mut t = fit(&pairs)?;
    // Refit without the matches the fit explains worst (another object, a repeated pattern).
    for tolerance in [2.0f32, 1.0] {
        pairs.retain(|((a, b), (c, d))| {
            let (x, y) = t.apply(*a, *b);
            (x - c).hypot(y - d) <= tolerance
        });
        if pairs.len() < need {
            return None;
        }
        t = fit(&pairs)?;
    }
    Some(t)
}

/// How `cur` differs from `key` moved by `t` (thumbnail pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Blocks that differ beyond noise.
    pub changed_blocks: usize,
    /// Blocks compared (at least half their pixels seen in the key frame).
    pub blocks: usize,
    /// The median block's mean absolute difference (grey levels).
    pub median: f32,
    /// Share of the frame's pixels the key frame did not see.
    pub exposed: f32,
}

/// Compares `cur` with `key` warped by `t`, block by block.
pub fn compare(key: &Thumb, cur: &Thumb, t: Transform, change_level: f32) -> Comparison {
    let (bw, bh) = (cur.width.div_ceil(BLOCK), cur.height.div_ceil(BLOCK));
    let mut sums = vec![0f32; bw * bh];
    let mut seen = vec![0usize; bw * bh];
    let mut totals = vec![0usize; bw * bh];
    let mut unseen = 0usize;
    for y in 0..cur.height {
        for x in 0..cur.width {
            let b = (y / BLOCK) * bw + x / BLOCK;
            totals[b] += 1;
            let (kx, ky) = ((x as f32 - t.dx) / t.scale, (y as f32 - t.dy) / t.scale);
            match key.range_near(kx, ky) {
                Some((lo, hi)) => {
                    let v = cur.px[y * cur.width + x];
                    sums[b] += (lo - v).max(v - hi).max(0.0);
                    seen[b] += 1;
                }
                None => unseen += 1,
            }
        }
    }
    let mut means: Vec<f32> = (0..bw * bh)
        .filter(|&b| seen[b] * 2 >= totals[b] && seen[b] > 0)
        .map(|b| sums[b] / seen[b] as f32)
        .collect();
    let blocks = means.len();
    let threshold_of = |median: f32| change_level.max(3.0 * median);
    means.sort_by(f32::total_cmp);
    let median = means.get(blocks / 2).copied().unwrap_or(0.0);
    let threshold = threshold_of(median);
    let changed_blocks = means.iter().filter(|&&m| m > threshold).count();
    Comparison {
        changed_blocks,
        blocks,
        median,
        exposed: unseen as f32 / (cur.width * cur.height).max(1) as f32,
    }
}

/// The key frame and what followed it.
struct Key {
    frame: KeyFrame,
    frame_size: (u32, u32),
    /// Frames since the key frame.
    since: u32,
    /// The transform to the previous frame (thumbnail pixels): where the next search starts.
    last: Transform,
}

/// One session's motion state.
#[derive(Default)]
pub struct State {
    key: Option<Key>,
}

/// What this frame is, relative to the key frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub detect: bool,
    pub reason: &'static str,
    pub cut: bool,
    /// Key-frame to this frame, in frame pixels.
    pub transform: Option<Transform>,
    pub frames_since_key: u32,
    pub exposed: f32,
    pub changed_blocks: usize,
}

/// Judges `image` against the session's key frame and updates the state.
pub fn judge(config: &SceneMotionConfig, state: &mut State, image: &Image) -> Verdict {
    let block = config.thumb as usize;
    let cur = Thumb::of(image, block);
    let size = (image.width, image.height);
    let fresh = |reason: &'static str, cut: bool| Verdict {
        detect: true,
        reason,
        cut,
        transform: None,
        frames_since_key: 0,
        exposed: 0.0,
        changed_blocks: 0,
    };
    // The verdict, and the motion in thumbnail pixels (where the next search starts).
    let (verdict, moved) = match &state.key {
        None => (fresh("first", true), None),
        Some(key) if key.frame_size != size => (fresh("resized", true), None),
        // Too small to estimate motion on: every frame is looked at afresh.
        Some(key) if key.frame.thumb.width < 2 * PATCH || key.frame.thumb.height < 2 * PATCH => {
            (fresh("small", true), None)
        }
        Some(key) => {
            let radius = (config.search_px / block as f32).ceil() as usize;
            let moved = estimate(&key.frame, &cur, key.last, radius);
            let t = moved.unwrap_or(Transform::IDENTITY);
            let seen = compare(&key.frame.thumb, &cur, t, config.change_level);
            let since = key.since + 1;
            let cut = seen.blocks == 0
                || seen.changed_blocks as f32 >= config.cut_fraction * seen.blocks as f32
                || seen.median > 3.0 * config.change_level;
            let reason = if cut {
                Some("cut")
            } else if seen.changed_blocks > 0 {
                Some(if moved.is_some() { "changed" } else { "unsure" })
            } else if seen.exposed > config.max_exposed {
                Some("exposed")
            } else if (t.scale - 1.0).abs() > config.max_scale {
                Some("scaled")
            } else if since >= config.max_frames {
                Some("refresh")
            } else {
                None
            };
            // Block centres are at (i + 0.5) * block in frame pixels.
            let in_frame = |t: Transform| Transform {
                scale: t.scale,
                dx: t.dx * block as f32 + (t.scale - 1.0) * -0.5 * block as f32,
                dy: t.dy * block as f32 + (t.scale - 1.0) * -0.5 * block as f32,
            };
            let verdict = Verdict {
                detect: reason.is_some(),
                reason: reason.unwrap_or("moved"),
                cut,
                transform: (!cut).then(|| in_frame(t)),
                frames_since_key: since,
                exposed: seen.exposed,
                changed_blocks: seen.changed_blocks,
            };
            (verdict, Some(t))
        }
    };
    match (verdict.detect, state.key.as_mut(), moved) {
        (false, Some(key), Some(t)) => {
            key.since = verdict.frames_since_key;
            key.last = t;
        }
        _ if verdict.detect => {
            state.key = Some(Key {
                frame: KeyFrame::new(cur),
                frame_size: size,
                since: 0,
                last: Transform::IDENTITY,
            });
        }
        _ => {}
    }
    verdict
}

pub(super) fn run(
    config: &SceneMotionConfig,
    inputs: &[(String, Value)],
    state: &mut State,
) -> Result<Value, NodeFailure> {
    let Some((_, Value::Image(image))) = inputs.first() else {
        return Err(NodeFailure::Node(format!(
            "expects a decoded image, got {}",
            super::kind_of(inputs.first())
        )));
    };
    if !image.is_consistent() {
        return Err(NodeFailure::Node(
            "the image's pixels do not match its size".into(),
        ));
    }
    let v = judge(config, state, image);
    let transform = v
        .transform
        .map(|t| json!({"scale": round4(t.scale), "dx": round2(t.dx), "dy": round2(t.dy)}));
    Ok(Value::Json(json!({
        "detect": v.detect,
        "reason": v.reason,
        "cut": v.cut,
        "transform": transform,
        "width": image.width,
        "height": image.height,
        "frames_since_key": v.frames_since_key,
        "exposed": round4(v.exposed),
        "changed_blocks": v.changed_blocks,
    })))
}

fn round2(v: f32) -> f64 {
    (v as f64 * 100.0).round() / 100.0
}
fn round4(v: f32) -> f64 {
    (v as f64 * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured gray scene `w` x `h`, sampled at `(x, y)` in scene coordinates.
    fn scene(x: f32, y: f32) -> f32 {
        let v = (x * 0.11).sin() * 40.0
            + (y * 0.07).cos() * 40.0
            + ((x * 0.031 + y * 0.043).sin() * 50.0)
            + if ((x / 23.0).floor() as i64 + (y / 17.0).floor() as i64) % 3 == 0 {
                30.0
            } else {
                0.0
            };
        (128.0 + v).clamp(0.0, 255.0)
    }

    /// The frame a camera sees when the scene is moved by `t` (frame = t(scene)).
    fn frame(w: u32, h: u32, t: Transform, noise: u32) -> Image {
        let mut data = Vec::with_capacity((w * h) as usize);
        let mut seed = 12345u32.wrapping_add(noise);
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (
                    (x as f32 + 0.5 - t.dx) / t.scale,
                    (y as f32 + 0.5 - t.dy) / t.scale,
                );
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let n = if noise > 0 {
                    ((seed >> 16) % (2 * noise + 1)) as f32 - noise as f32
                } else {
                    0.0
                };
                data.push((scene(sx, sy) + n).clamp(0.0, 255.0) as u8);
            }
        }
        Image {
            width: w,
            height: h,
            format: PixelFormat::Gray8,
            data,
        }
    }

    fn shift(dx: f32, dy: f32) -> Transform {
        Transform { scale: 1.0, dx, dy }
    }

    #[test]
    fn a_thumbnail_is_the_block_means_of_luma() {
        let image = Image {
            width: 4,
            height: 2,
            format: PixelFormat::Bgr8,
            data: [[0u8, 0, 255], [0, 0, 255], [255, 255, 255], [255, 255, 255]]
                .repeat(2)
                .concat(),
        };
        let t = Thumb::of(&image, 2);
        assert_eq!((t.width, t.height), (2, 1));
        assert!((t.px[0] - 255.0 * 77.0 / 256.0).abs() < 0.01, "{:?}", t.px);
        assert!((t.px[1] - 255.0).abs() < 0.01, "{:?}", t.px);
    }

    #[test]
    fn synthetic_shifts_are_estimated_to_within_half_a_frame_pixel() {
        let config = SceneMotionConfig::default();
        let key = KeyFrame::new(Thumb::of(&frame(640, 480, Transform::IDENTITY, 3), 4));
        for (dx, dy) in [
            (0.0, 0.0),
            (3.0, -2.0),
            (17.5, 6.25),
            (-30.0, 12.0),
            (41.0, -37.0),
        ] {
            let cur = Thumb::of(&frame(640, 480, shift(dx, dy), 3), 4);
            let radius = (config.search_px / 4.0).ceil() as usize;
            let t = estimate(&key, &cur, Transform::IDENTITY, radius);
            let Some(t) = t else {
                panic!("no estimate for a shift of ({dx}, {dy})");
            };
            let t = t.scaled(4.0);
            assert!(
                (t.dx - dx).abs() < 0.5 && (t.dy - dy).abs() < 0.5 && (t.scale - 1.0).abs() < 0.005,
                "shift ({dx}, {dy}) estimated as {t:?}"
            );
        }
    }

    #[test]
    fn a_zoom_is_estimated_as_a_scale_about_any_centre() {
        let key = KeyFrame::new(Thumb::of(&frame(640, 480, Transform::IDENTITY, 0), 4));
        // 6% larger about the frame's centre.
        let s = 1.06;
        let zoom = Transform {
            scale: s,
            dx: 320.0 * (1.0 - s),
            dy: 240.0 * (1.0 - s),
        };
        let cur = Thumb::of(&frame(640, 480, zoom, 0), 4);
        let t = estimate(&key, &cur, Transform::IDENTITY, 12);
        let Some(t) = t else {
            panic!("no estimate for a 6% zoom");
        };
        // Where the frame's corners land, within a pixel and a half.
        for (x, y) in [(0.0, 0.0), (640.0, 480.0), (320.0, 100.0)] {
            let want = zoom.apply(x, y);
            let got = t.scaled(4.0).apply(x, y);
            assert!(
                (want.0 - got.0).abs() < 1.5 && (want.1 - got.1).abs() < 1.5,
                "({x}, {y}) -> {got:?}, want {want:?} ({t:?})"
            );
        }
    }

    #[test]
    fn a_still_or_shifted_scene_is_reused_and_a_cut_or_local_change_is_not() {
        let config = SceneMotionConfig::default();
        let mut state = State::default();
        let first = judge(
            &config,
            &mut state,
            &frame(640, 480, Transform::IDENTITY, 3),
        );
        assert!(first.detect && first.reason == "first");
        // Sensor noise only: nothing to redo.
        let still = judge(
            &config,
            &mut state,
            &frame(640, 480, Transform::IDENTITY, 4),
        );
        assert!(!still.detect, "{still:?}");
        // A slow pan: moved, not redone, and the transform says where to.
        for k in 1..=4 {
            let v = judge(
                &config,
                &mut state,
                &frame(640, 480, shift(-2.0 * k as f32, 1.0), 3),
            );
            assert!(!v.detect, "step {k}: {v:?}");
            let t = v.transform.unwrap_or(Transform::IDENTITY);
            assert!(
                (t.dx + 2.0 * k as f32).abs() < 0.6 && (t.dy - 1.0).abs() < 0.6,
                "{t:?}"
            );
        }
        // A patch of the scene changes (a sign's price): redone, not a cut.
        let mut changed = frame(640, 480, shift(-8.0, 1.0), 3);
        for y in 200..240 {
            for x in 300..380 {
                changed.data[y * 640 + x] = 255 - changed.data[y * 640 + x];
            }
        }
        let v = judge(&config, &mut state, &changed);
        assert!(v.detect && !v.cut && v.reason == "changed", "{v:?}");
        // Another scene entirely: a cut.
        let mut other = frame(640, 480, shift(200.0, 150.0), 3);
        other.data.iter_mut().for_each(|p| *p = 255 - *p);
        let v = judge(&config, &mut state, &other);
        assert!(v.detect && v.cut, "{v:?}");
        // A pan far enough to expose the frame's edge past max_exposed.
        let mut state = State::default();
        judge(
            &config,
            &mut state,
            &frame(640, 480, Transform::IDENTITY, 0),
        );
        let mut exposed = None;
        for k in 1..=20 {
            let v = judge(
                &config,
                &mut state,
                &frame(640, 480, shift(4.0 * k as f32, 0.0), 0),
            );
            if v.detect {
                exposed = Some((k, v));
                break;
            }
        }
        let Some((k, v)) = exposed else {
            panic!("an 80 px pan never asked for the detector");
        };
        assert_eq!(v.reason, "exposed", "{v:?}");
        assert!((6..=10).contains(&k), "exposed after {k} frames of 4 px");
    }

    #[test]
    fn the_key_frame_is_refreshed_after_max_frames() {
        let config = SceneMotionConfig {
            max_frames: 5,
            ..SceneMotionConfig::default()
        };
        let mut state = State::default();
        let still = frame(320, 240, Transform::IDENTITY, 2);
        let detects: Vec<bool> = (0..12)
            .map(|_| judge(&config, &mut state, &still).detect)
            .collect();
        assert_eq!(
            detects,
            [true, false, false, false, false, true, false, false, false, false, true, false]
        );
    }

    #[test]
    fn configs_out_of_range_are_refused() {
        let table = |text: &str| text.parse::<toml::Table>().unwrap_or_default();
        assert!(load_config(&table("")).is_ok());
        for bad in [
            "thumb = 1",
            "max_frames = 0",
            "max_exposed = 2.0",
            "change_level = -1.0",
            "search_px = 0.5",
            "nope = 1",
        ] {
            assert!(load_config(&table(bad)).is_err(), "{bad}");
        }
    }
}
