//! The native text-crop node (`kind = "text_crop"`): cut each detected text
//! box out of the frame, upright, at the recogniser's height, and batch them.
//!
//! A box is a quadrilateral (text may be rotated or seen in perspective). Like
//! PaddleOCR's `get_rotate_crop_image`, each is rectified with a perspective
//! transform to a `w` x `h` rectangle whose sides are the box's longer edges,
//! and turned upright when it is much taller than wide. Here the rectification
//! and the resize to the recogniser's input height are one bilinear sampling
//! pass straight from the frame (no intermediate crop image), written directly
//! as normalised NCHW floats. Crops are padded on the right with zeros, in
//! one of two layouts (`widths`):
//!
//! * `shared` (default): all crops in one batch `[N,3,H,W]`, each padded to
//!   the widest (`W = max(min_width, height * widest ratio)`), as RapidOCR
//!   sizes its batches; the layout a model with a fixed input width needs.
//! * `own`: a ragged batch, one tensor `[1,3,H,W_i]` per crop, each only as
//!   wide as its own text (`W_i = max(min_width, height * its ratio)`), all
//!   named alike so the `onnx` node runs the model once per crop. A
//!   convolutional recogniser's cost is linear in width and its batch gives no
//!   economy of scale (PP-OCRv6 rec: three 320-wide lines batched 92 ms, one
//!   alone 30 ms), while padding every short line to 320 pixels was 28% of the
//!   columns the recogniser ran on the benchmark corpus.
//!
//! Either way the node keeps one crop per box, in order, so the recogniser's
//! i-th line belongs to the detector's i-th box.

use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value as Json;

use super::{par, typed_config, NodeFailure, RunContext};
use crate::config::MAX_RAGGED_RUNS;
use crate::value::{Image, PixelFormat, Tensor, Value};

fn default_height() -> u32 {
    48
}
fn default_min_width() -> u32 {
    320
}
fn default_max_width() -> u32 {
    2400
}
fn default_name() -> String {
    "x".into()
}
fn default_max_boxes() -> usize {
    256
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextCropConfig {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default = "default_min_width")]
    pub min_width: u32,
    #[serde(default = "default_max_width")]
    pub max_width: u32,
    /// Boxes beyond this many are not cropped (bounds work per frame).
    #[serde(default = "default_max_boxes")]
    pub max_boxes: usize,
    /// One batch padded to the widest crop, or one tensor per crop at its own width.
    #[serde(default)]
    pub widths: Widths,
}

/// How the crops are laid out (see the module documentation).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Widths {
    #[default]
    Shared,
    Own,
}

/// Largest crop height or width: the recogniser's input, never a frame-sized buffer per box.
pub const MAX_CROP_SIDE: u32 = 4096;

impl TextCropConfig {
    /// Load-time check: sizes in 1..=[`MAX_CROP_SIDE`], min_width <= max_width, at
    /// most 1000 boxes, so a manifest cannot make every frame allocate gigabytes.
    pub fn validate(&self) -> Result<(), String> {
        let sides = [self.height, self.min_width, self.max_width];
        if sides.iter().any(|s| !(1..=MAX_CROP_SIDE).contains(s)) {
            return Err(format!(
                "height, min_width and max_width must be in 1..={MAX_CROP_SIDE}"
            ));
        }
        if self.min_width > self.max_width {
            return Err("min_width must not exceed max_width".into());
        }
        if !(1..=MAX_RAGGED_RUNS).contains(&self.max_boxes) {
            return Err(format!("max_boxes must be in 1..={MAX_RAGGED_RUNS}"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TextCropError {
    #[error("expects an rgb8 or bgr8 image, got {0}")]
    Format(&'static str),
    #[error(
        "boxes input must be JSON {{\"boxes\":[{{\"points\":[[x,y],[x,y],[x,y],[x,y]]}}]}}: {0}"
    )]
    Boxes(String),
}

/// Parses `{"boxes":[{"points":[[x,y]x4], ...}]}`.
pub fn parse_boxes(json: &Json) -> Result<Vec<[[f32; 2]; 4]>, TextCropError> {
    let boxes = json
        .get("boxes")
        .and_then(Json::as_array)
        .ok_or_else(|| TextCropError::Boxes("no \"boxes\" array".into()))?;
    boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let pts = b
                .get("points")
                .and_then(Json::as_array)
                .filter(|p| p.len() == 4)
                .ok_or_else(|| TextCropError::Boxes(format!("box {i} lacks 4 points")))?;
            let mut out = [[0f32; 2]; 4];
            for (slot, p) in out.iter_mut().zip(pts) {
                let xy = p.as_array().filter(|xy| xy.len() == 2).ok_or_else(|| {
                    TextCropError::Boxes(format!("box {i} has a malformed point"))
                })?;
                for (k, v) in xy.iter().enumerate() {
                    slot[k] = v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                        TextCropError::Boxes(format!("box {i} has a non-numeric coordinate"))
                    })? as f32;
                }
            }
            Ok(out)
        })
        .collect()
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// The homography taking the rectangle (0,0),(w,0),(w,h),(0,h) to `quad`.
fn homography(w: f64, h: f64, quad: &[[f32; 2]; 4]) -> Option<[f64; 9]> {
    let src = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (src[i][0], src[i][1]);
        let (u, v) = (quad[i][0] as f64, quad[i][1] as f64);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting on the 8x8 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = a[row][col] / a[col][col];
                let pivot_row = a[col];
                for (cell, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                    *cell -= f * p;
                }
            }
        }
    }
    let mut hm = [0f64; 9];
    for i in 0..8 {
        hm[i] = a[i][8] / a[i][i];
    }
    hm[8] = 1.0;
    Some(hm)
}

/// Rows of one crop sampled by one work item (crops run in parallel by bands).
const BAND_ROWS: usize = 12;

/// How one box is sampled. Output pixel `(u, r)` of the box's crop sits at
/// frame position `(X / W, Y / H)` with `[X, Y, W] = m * [u, r, 1]`: the
/// homography, the crop's pixel centres, the upright turn and the half-pixel
/// shift of sampling at pixel centres, composed once per box, so that a
/// pixel costs three multiply-adds and a division.
struct Plan {
    m: [f64; 9],
    out_w: usize,
}

impl Plan {
    /// `hm` maps the upright crop rectangle `crop_w` x `crop_h` (before any
    /// turn) to the frame; the output is `h_out` rows high, turned a quarter
    /// counter-clockwise when `rotate`, and as wide as keeps the (turned)
    /// crop's aspect, within `1..=max_width`.
    fn new(hm: &[f64; 9], crop: (f64, f64), rotate: bool, h_out: usize, max_width: u32) -> Self {
        let (crop_w, crop_h) = crop;
        let (rot_w, rot_h) = if rotate {
            (crop_h, crop_w)
        } else {
            (crop_w, crop_h)
        };
        let out_w =
            ((h_out as f64 * rot_w / rot_h).ceil() as usize).clamp(1, max_width.max(1) as usize);
        let (su, sv) = (rot_w / out_w as f64, rot_h / h_out as f64);
        // (u, r, 1) -> the crop coordinates (cx, cy, 1) of the output pixel's
        // centre; a tall box is sampled turned back (undoing np.rot90).
        let a: [f64; 9] = if rotate {
            [
                0.0,
                -sv,
                crop_w - 0.5 * sv,
                su,
                0.0,
                0.5 * su,
                0.0,
                0.0,
                1.0,
            ]
        } else {
            [su, 0.0, 0.5 * su, 0.0, sv, 0.5 * sv, 0.0, 0.0, 1.0]
        };
        let mut m = [0f64; 9];
        for (i, cell) in m.iter_mut().enumerate() {
            let (row, col) = (i / 3, i % 3);
            *cell = (0..3).map(|k| hm[row * 3 + k] * a[k * 3 + col]).sum();
        }
        // Frame pixel centres sit at integer + 0.5: x -= 0.5 W, y -= 0.5 W.
        for col in 0..3 {
            let w = m[6 + col];
            m[col] -= 0.5 * w;
            m[3 + col] -= 0.5 * w;
        }
        Plan { m, out_w }
    }
}

/// What every band's sampling shares.
struct Sampler<'a> {
    img: &'a Image,
    /// Output plane k takes byte `order[k]` of a frame pixel (BGR planes).
    order: [usize; 3],
}

/// One work item: a band of rows of one crop, in that crop's tensor (its
/// three planes' bands, rows `width` floats apart).
struct Band<'a> {
    crop: usize,
    first_row: usize,
    width: usize,
    out: [&'a mut [f32]; 3],
}

/// `(v / 255 - 0.5) / 0.5`, as PaddleOCR normalises its recogniser's input.
const NORM_MUL: f32 = 2.0 / 255.0;

impl Sampler<'_> {
    /// Writes rows `first_row..` of box `p` into `out` (its three planes'
    /// bands, rows `width` floats apart).
    fn fill(&self, p: &Plan, first_row: usize, width: usize, out: [&mut [f32]; 3]) {
        let img = self.img;
        let (w, h) = (i64::from(img.width), i64::from(img.height));
        let stride = img.width as usize * 3;
        let data = img.data.as_slice();
        let m = &p.m;
        let [o0, o1, o2] = out;
        let rows = o0
            .chunks_mut(width)
            .zip(o1.chunks_mut(width))
            .zip(o2.chunks_mut(width));
        for (r, ((r0, r1), r2)) in rows.enumerate() {
            let rf = (first_row + r) as f64;
            let (bx, by, bw) = (m[1] * rf + m[2], m[4] * rf + m[5], m[7] * rf + m[8]);
            let row = r0.iter_mut().zip(r1.iter_mut()).zip(r2.iter_mut());
            for (u, ((d0, d1), d2)) in row.take(p.out_w).enumerate() {
                let uf = u as f64;
                let inv = 1.0 / (m[6] * uf + bw);
                let (sx, sy) = ((m[0] * uf + bx) * inv, (m[3] * uf + by) * inv);
                let (x0, y0) = (floor(sx), floor(sy));
                let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
                let (x0, y0) = (x0 as i64, y0 as i64);
                // The 2x2 neighbourhood: read straight when it lies inside the
                // frame (nearly always), else clamped to the frame's edge.
                let mut quad = [[0f32; 3]; 4];
                if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h {
                    let at = y0 as usize * stride + x0 as usize * 3;
                    if let (Some(top), Some(bottom)) =
                        (data.get(at..at + 6), data.get(at + stride..at + stride + 6))
                    {
                        for k in 0..3 {
                            quad[0][k] = f32::from(top[k]);
                            quad[1][k] = f32::from(top[3 + k]);
                            quad[2][k] = f32::from(bottom[k]);
                            quad[3][k] = f32::from(bottom[3 + k]);
                        }
                    }
                } else {
                    let texels = [(x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)];
                    for (q, (x, y)) in quad.iter_mut().zip(texels) {
                        let at =
                            y.clamp(0, h - 1) as usize * stride + x.clamp(0, w - 1) as usize * 3;
                        if let Some(&[a, b, c]) = data.get(at..at + 3) {
                            *q = [f32::from(a), f32::from(b), f32::from(c)];
                        }
                    }
                }
                let [a, b, c, d] = quad;
                let value = |k: usize| {
                    let top = a[k] * (1.0 - fx) + b[k] * fx;
                    let bottom = c[k] * (1.0 - fx) + d[k] * fx;
                    (top * (1.0 - fy) + bottom * fy) * NORM_MUL - 1.0
                };
                let [k0, k1, k2] = self.order;
                *d0 = value(k0);
                *d1 = value(k1);
                *d2 = value(k2);
            }
        }
    }
}

/// `v.floor()` without a call into libm (baseline x86-64 has no rounding
/// instruction, and this runs twice per output pixel); exact for |v| < 2^52,
/// and crop coordinates are frame pixels.
fn floor(v: f64) -> f64 {
    let t = v as i64 as f64;
    if t > v {
        t - 1.0
    } else {
        t
    }
}

/// Crops, rectifies, resizes and batches every box: returns `x` `[N,3,H,W]`
/// (`shared` widths) or one `x` `[1,3,H,W_i]` per box (`own`; with no boxes, the
/// same empty `[0,3,H,W]` batch as `shared`). Bands of rows are sampled over
/// up to `threads` threads ([`par::for_each`]).
pub fn text_crop(
    img: &Image,
    boxes: &[[[f32; 2]; 4]],
    cfg: &TextCropConfig,
    threads: usize,
) -> Result<Vec<Tensor>, TextCropError> {
    if !matches!(img.format, PixelFormat::Rgb8 | PixelFormat::Bgr8) || !img.is_consistent() {
        return Err(TextCropError::Format(img.format.as_str()));
    }
    let h_out = cfg.height.max(1) as usize;
    let mut plans = Vec::new();
    for quad in boxes.iter().take(cfg.max_boxes) {
        let crop_w = dist(quad[0], quad[1]).max(dist(quad[2], quad[3])).max(1.0) as f64;
        let crop_h = dist(quad[0], quad[3]).max(dist(quad[1], quad[2])).max(1.0) as f64;
        let hm = homography(crop_w, crop_h, quad)
            .unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let rotate = crop_h / crop_w >= 1.5;
        plans.push(Plan::new(
            &hm,
            (crop_w, crop_h),
            rotate,
            h_out,
            cfg.max_width,
        ));
    }
    let tensor_width = |w: usize| {
        w.max(cfg.min_width as usize)
            .min(cfg.max_width.max(1) as usize)
    };
    // Output tensors: the crops each holds, and its width.
    let tensors: Vec<(Range<usize>, usize)> = match cfg.widths {
        Widths::Own if !plans.is_empty() => plans
            .iter()
            .enumerate()
            .map(|(i, p)| (i..i + 1, tensor_width(p.out_w)))
            .collect(),
        _ => {
            let widest = plans.iter().map(|p| p.out_w).max().unwrap_or(0);
            vec![(0..plans.len(), tensor_width(widest))]
        }
    };
    let mut buffers: Vec<Vec<f32>> = tensors
        .iter()
        .map(|(crops, width)| vec![0f32; crops.len() * 3 * h_out * width])
        .collect();
    // BGR planes, as PaddleOCR feeds its recogniser.
    let order: [usize; 3] = if img.format == PixelFormat::Bgr8 {
        [0, 1, 2]
    } else {
        [2, 1, 0]
    };
    let band_rows = BAND_ROWS.min(h_out);
    let mut bands: Vec<Band<'_>> = Vec::new();
    for ((crops, width), data) in tensors.iter().zip(buffers.iter_mut()) {
        let (width, plane) = (*width, h_out * *width);
        for (crop, planes) in crops.clone().zip(data.chunks_mut(3 * plane)) {
            let mut split = planes
                .chunks_mut(plane)
                .map(|p| p.chunks_mut(band_rows * width));
            let (Some(c0), Some(c1), Some(c2)) = (split.next(), split.next(), split.next()) else {
                continue;
            };
            for (k, ((b0, b1), b2)) in c0.zip(c1).zip(c2).enumerate() {
                bands.push(Band {
                    crop,
                    first_row: k * band_rows,
                    width,
                    out: [b0, b1, b2],
                });
            }
        }
    }
    debug_assert_eq!(bands.len(), plans.len() * h_out.div_ceil(band_rows));
    let sampler = Sampler { img, order };
    par::for_each(threads, bands, |band| {
        if let Some(plan) = plans.get(band.crop) {
            sampler.fill(plan, band.first_row, band.width, band.out);
        }
    });
    Ok(tensors
        .iter()
        .zip(buffers)
        .map(|((crops, width), data)| Tensor {
            name: cfg.name.clone(),
            shape: vec![crops.len() as u32, 3, h_out as u32, *width as u32],
            data: data.into(),
        })
        .collect())
}

// The node's part in `nodes::NativeKind` / `NativeNode`: inputs, config, run.

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if inputs != 2 {
        return Err("text_crop takes two inputs: the image, then the boxes".into());
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<TextCropConfig, String> {
    let config: TextCropConfig = typed_config(table)?;
    config.validate()?;
    Ok(config)
}

pub(super) fn run(
    config: &TextCropConfig,
    inputs: &[(String, Value)],
    ctx: RunContext,
) -> Result<Value, NodeFailure> {
    let fail = |e: TextCropError| NodeFailure::Node(e.to_string());
    match (inputs.first(), inputs.get(1)) {
        (Some((_, Value::Image(img))), Some((_, Value::Json(boxes)))) => {
            let boxes = parse_boxes(boxes).map_err(fail)?;
            let crops = text_crop(img, &boxes, config, ctx.threads).map_err(fail)?;
            Ok(Value::Tensors(Arc::new(crops)))
        }
        _ => Err(NodeFailure::Node(
            "expects an image and a JSON list of boxes".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> TextCropConfig {
        TextCropConfig {
            name: "x".into(),
            height: 48,
            min_width: 320,
            max_width: 2400,
            max_boxes: 256,
            widths: Widths::Shared,
        }
    }

    /// The `shared` layout's one batch.
    fn batch(result: Result<Vec<Tensor>, TextCropError>) -> Tensor {
        match result.as_deref() {
            Ok([one]) => one.clone(),
            other => Tensor {
                name: format!("not one tensor: {other:?}"),
                shape: vec![],
                data: Vec::<f32>::new().into(),
            },
        }
    }

    /// A 200x100 BGR image: left half black, right half white.
    fn halves() -> Image {
        let data = (0..200 * 100)
            .flat_map(|i| if i % 200 < 100 { [0u8; 3] } else { [255u8; 3] })
            .collect();
        Image {
            width: 200,
            height: 100,
            format: PixelFormat::Bgr8,
            data,
        }
    }

    #[test]
    fn an_axis_aligned_box_is_cropped_resized_and_padded() {
        // A 96x24 box straddling the edge: left half black, right half white.
        let quad = [[52.0, 40.0], [148.0, 40.0], [148.0, 64.0], [52.0, 64.0]];
        let t = batch(text_crop(&halves(), &[quad], &cfg(), 2));
        // ratio 4 -> 192 px wide at height 48; batch padded to 320.
        assert_eq!(t.shape, vec![1, 3, 48, 320]);
        let at = |u: usize| t.data.f32().unwrap()[10 * 320 + u];
        assert!((at(5) + 1.0).abs() < 0.01, "black maps to -1: {}", at(5));
        assert!((at(180) - 1.0).abs() < 0.01, "white maps to 1: {}", at(180));
        assert_eq!(at(250), 0.0, "padding is zero");
    }

    #[test]
    fn splitting_the_work_over_threads_changes_no_value() {
        let (img, boxes) = three_boxes();
        let serial = batch(text_crop(&img, &boxes, &cfg(), 1));
        assert_eq!(serial.shape, vec![3, 3, 48, 320]);
        for threads in [2, 5, 64] {
            let split = batch(text_crop(&img, &boxes, &cfg(), threads));
            assert_eq!(split, serial, "{threads} threads");
        }
    }

    #[test]
    fn floor_agrees_with_the_library_floor() {
        for v in [
            -2.5,
            -1.0,
            -0.5,
            -0.0,
            0.0,
            0.25,
            1.0,
            1.999,
            639.5,
            1e9 + 0.5,
        ] {
            assert_eq!(floor(v), v.floor(), "{v}");
        }
    }

    #[test]
    fn tall_boxes_are_turned_upright() {
        // A 20x80 box on the boundary between halves, rotated: width becomes 80.
        let quad = [[90.0, 10.0], [110.0, 10.0], [110.0, 90.0], [90.0, 90.0]];
        let t = batch(text_crop(&halves(), &[quad], &cfg(), 2));
        assert_eq!(t.shape, vec![1, 3, 48, 320]);
        // Upright after a counter-clockwise turn: the right (white) half is on top.
        let top = t.data.f32().unwrap()[5 * 320 + 50];
        let bottom = t.data.f32().unwrap()[42 * 320 + 50];
        assert!(top > 0.9 && bottom < -0.9, "top {top} bottom {bottom}");
    }

    #[test]
    fn boxes_json_is_checked() {
        let ok = json!({"boxes":[{"points":[[0,0],[1,0],[1,1],[0,1]],"score":0.9}]});
        assert_eq!(parse_boxes(&ok).map(|b| b.len()), Ok(1));
        assert!(parse_boxes(&json!({"boxes":[{"points":[[0,0]]}]})).is_err());
        assert!(parse_boxes(&json!({"nope":1})).is_err());
        let empty = batch(text_crop(&halves(), &[], &cfg(), 2));
        assert_eq!(empty.shape, vec![0, 3, 48, 320]);
    }

    /// Three boxes of different widths on a patterned RGB frame.
    fn three_boxes() -> (Image, [[[f32; 2]; 4]; 3]) {
        let img = Image {
            width: 200,
            height: 100,
            format: PixelFormat::Rgb8,
            data: (0..200 * 100 * 3).map(|i| (i * 7 % 251) as u8).collect(),
        };
        let boxes = [
            [[52.0, 40.0], [148.0, 40.0], [148.0, 64.0], [52.0, 64.0]],
            [[90.0, 10.0], [110.0, 10.0], [110.0, 90.0], [90.0, 90.0]],
            [[10.0, 20.0], [80.0, 5.0], [84.0, 25.0], [14.0, 40.0]],
        ];
        (img, boxes)
    }

    #[test]
    fn own_widths_give_each_crop_the_shared_batch_s_pixels_unpadded() {
        let (img, boxes) = three_boxes();
        let shared = batch(text_crop(&img, &boxes, &cfg(), 1));
        let own_cfg = TextCropConfig {
            widths: Widths::Own,
            min_width: 8,
            ..cfg()
        };
        let own = text_crop(&img, &boxes, &own_cfg, 1).unwrap_or_default();
        // 96x24 -> 192; 20x80 turned upright -> 192; the skewed 71.6x20.4 box -> 169.
        let shapes: Vec<Vec<u32>> = own.iter().map(|t| t.shape.clone()).collect();
        assert_eq!(
            shapes,
            vec![
                vec![1, 3, 48, 192],
                vec![1, 3, 48, 192],
                vec![1, 3, 48, 169]
            ]
        );
        assert!(own.iter().all(|t| t.name == "x"));
        let shared_w = shared.shape[3] as usize;
        for (i, crop) in own.iter().enumerate() {
            let w = crop.shape[3] as usize;
            for (row, own_row) in crop.data.f32().unwrap().chunks_exact(w).enumerate() {
                let at = (i * 3 * 48 + row) * shared_w;
                assert_eq!(
                    own_row,
                    &shared.data.f32().unwrap()[at..at + w],
                    "crop {i} row {row}"
                );
                assert!(shared.data.f32().unwrap()[at + w..at + shared_w]
                    .iter()
                    .all(|&v| v == 0.0));
            }
        }
        for threads in [2, 5] {
            let split = text_crop(&img, &boxes, &own_cfg, threads).unwrap_or_default();
            assert_eq!(split, own, "{threads} threads");
        }
    }

    #[test]
    fn own_widths_keep_min_and_max_width_and_the_empty_batch() {
        let (img, boxes) = three_boxes();
        let own_cfg = TextCropConfig {
            widths: Widths::Own,
            min_width: 180,
            max_width: 190,
            ..cfg()
        };
        let own = text_crop(&img, &boxes, &own_cfg, 1).unwrap_or_default();
        let widths: Vec<u32> = own.iter().map(|t| t.shape[3]).collect();
        assert_eq!(widths, vec![190, 190, 180]);
        let empty = text_crop(&img, &[], &own_cfg, 1).unwrap_or_default();
        let shapes: Vec<Vec<u32>> = empty.iter().map(|t| t.shape.clone()).collect();
        assert_eq!(shapes, vec![vec![0, 3, 48, 180]]);
    }

    #[test]
    fn the_layout_is_read_from_the_manifest() {
        let own: TextCropConfig = serde_json::from_value(json!({"widths": "own", "min_width": 8}))
            .unwrap_or_else(|e| TextCropConfig {
                name: e.to_string(),
                ..cfg()
            });
        assert_eq!((own.widths, own.min_width), (Widths::Own, 8));
        let default: Result<TextCropConfig, _> = serde_json::from_value(json!({}));
        assert_eq!(default.map(|c| c.widths).ok(), Some(Widths::Shared));
        let bad: Result<TextCropConfig, _> = serde_json::from_value(json!({"widths": "wide"}));
        assert!(bad.is_err());
    }

    #[test]
    fn a_plan_maps_output_pixels_as_the_homography_does() {
        // The composed matrix against the steps it stands for: the output
        // pixel's centre in the (turned) crop, the homography, the half-pixel shift.
        let quad = [[10.0, 20.0], [80.0, 5.0], [84.0, 25.0], [14.0, 40.0]];
        let (crop_w, crop_h) = (71.6, 20.4);
        let hm = homography(crop_w, crop_h, &quad).unwrap_or([0.0; 9]);
        for rotate in [false, true] {
            let h_out = 48;
            let plan = Plan::new(&hm, (crop_w, crop_h), rotate, h_out, 2400);
            let out_w = plan.out_w;
            let (rot_w, rot_h) = if rotate {
                (crop_h, crop_w)
            } else {
                (crop_w, crop_h)
            };
            for (u, r) in [(0usize, 0usize), (5, 47), (168, 13), (84, 24)] {
                let uc = (u as f64 + 0.5) * rot_w / out_w as f64;
                let vc = (r as f64 + 0.5) * rot_h / h_out as f64;
                let (cx, cy) = if rotate { (crop_w - vc, uc) } else { (uc, vc) };
                let w = hm[6] * cx + hm[7] * cy + hm[8];
                let want = [
                    (hm[0] * cx + hm[1] * cy + hm[2]) / w - 0.5,
                    (hm[3] * cx + hm[4] * cy + hm[5]) / w - 0.5,
                ];
                let m = &plan.m;
                let (uf, rf) = (u as f64, r as f64);
                let w = m[6] * uf + m[7] * rf + m[8];
                let got = [
                    (m[0] * uf + m[1] * rf + m[2]) / w,
                    (m[3] * uf + m[4] * rf + m[5]) / w,
                ];
                for k in 0..2 {
                    assert!(
                        (got[k] - want[k]).abs() < 1e-9,
                        "{rotate} ({u},{r}): {got:?} vs {want:?}"
                    );
                }
            }
        }
    }
}
