//! The native pre-processing node (`kind = "to_tensor"`): resize an image
//! for a model and lay it out as a normalised NCHW f32 tensor.
//!
//! Pixel work is the host's job, and it is one pass: each output row of the
//! model's tensor is resampled straight from the frame's bytes (OpenCV's
//! `INTER_LINEAR` sampling, which the Python reference implementations call,
//! so we agree with them), reordered to the model's channel order and
//! normalised as `(x * scale - mean) / std`, written planar, with bands of
//! rows on up to `STREAMHOST_NODE_THREADS` threads. There is no intermediate
//! resized image: resizing a 1280x720 frame with fast_image_resize and then
//! normalising took 2.7 ms, the fused pass about half of that. A frame
//! already at the model's size skips resampling and goes through a lookup
//! table per channel. Two resize modes cover the models we run:
//!
//! * `fit` (DBNet-style): scale by the side limit, then round each side to a
//!   multiple of 32, as PaddleOCR's `resize_image_type0` does;
//! * `letterbox` (YOLO-style): keep the aspect ratio inside a fixed canvas,
//!   padded with a constant, at the top-left (YOLOX) or centred (YOLOv8).
//!
//! Besides the model input the node emits a `meta` tensor
//! `[src_w, src_h, scale_x, scale_y, pad_x, pad_y]` (model = src * scale +
//! pad), which post-processing nodes use to map results back to frame pixels.

use std::sync::Arc;

use serde::Deserialize;

use super::row_feed::RowFeed;
use super::{kind_of, par, typed_config, NodeFailure, RunContext};
use crate::value::{Image, PixelFormat, Tensor, Value};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LimitType {
    /// Cap the longer side at `limit_side_len` (never upscale).
    Max,
    /// Raise the shorter side to `limit_side_len` (never downscale).
    Min,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resize {
    Fit {
        limit_side_len: u32,
        #[serde(default = "default_limit_type")]
        limit_type: LimitType,
        #[serde(default = "default_multiple")]
        multiple: u32,
    },
    Letterbox {
        width: u32,
        height: u32,
        #[serde(default = "default_pad")]
        pad: u8,
        #[serde(default)]
        center: bool,
    },
}

fn default_limit_type() -> LimitType {
    LimitType::Max
}
fn default_multiple() -> u32 {
    32
}
fn default_pad() -> u8 {
    114
}
fn default_name() -> String {
    "x".into()
}
fn default_scale() -> f32 {
    1.0
}
fn default_std() -> [f32; 3] {
    [1.0; 3]
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    Rgb,
    Bgr,
}

/// The node's manifest `config`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToTensorConfig {
    /// Name of the emitted tensor (the model input it feeds).
    #[serde(default = "default_name")]
    pub name: String,
    pub resize: Resize,
    /// Channel order of the tensor's three planes.
    pub channels: Channels,
    #[serde(default = "default_scale")]
    pub scale: f32,
    #[serde(default)]
    pub mean: [f32; 3],
    #[serde(default = "default_std")]
    pub std: [f32; 3],
}

/// Largest tensor side this node produces (bounds memory per frame).
pub const MAX_SIDE: u32 = 4096;

impl ToTensorConfig {
    /// Load-time check of what serde cannot express: a letterbox target must
    /// have sides in 1..=[`MAX_SIDE`] (a zero side used to panic per frame).
    pub fn validate(&self) -> Result<(), String> {
        if let Resize::Letterbox { width, height, .. } = self.resize {
            if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
                return Err(format!(
                    "letterbox width and height must be in 1..={MAX_SIDE}, got {width}x{height}"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ToTensorError {
    #[error("expects an rgb8 or bgr8 image, got {0}")]
    Format(&'static str),
    #[error("image buffer does not match its size")]
    Inconsistent,
    #[error("target size {0}x{1} is out of range")]
    Size(u32, u32),
}

/// Per-channel lookup tables: output plane `c` = `lut[c][pixel[src[c]]]`.
struct Normaliser {
    src: [usize; 3],
    lut: [[f32; 256]; 3],
    /// Resampled values are not whole numbers, so no table: `v * mul + add`.
    mul: [f32; 3],
    add: [f32; 3],
}

impl Normaliser {
    fn new(cfg: &ToTensorConfig, format: PixelFormat) -> Self {
        let src = match (format, cfg.channels) {
            (PixelFormat::Rgb8, Channels::Rgb) | (PixelFormat::Bgr8, Channels::Bgr) => [0, 1, 2],
            _ => [2, 1, 0],
        };
        let mut lut = [[0f32; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                *out = (v as f32 * cfg.scale - cfg.mean[c]) / cfg.std[c];
            }
        }
        Normaliser {
            src,
            lut,
            mul: std::array::from_fn(|c| cfg.scale / cfg.std[c]),
            add: std::array::from_fn(|c| -cfg.mean[c] / cfg.std[c]),
        }
    }

    /// An interleaved 3-byte image as three planes in one vector, written
    /// plane by plane by `extend`: the vector is never zero-filled first
    /// (zeroing 3.7 MB cost as much as the pass itself), and re-reading the
    /// bytes three times is cheaper than that (they stay in cache).
    fn planar(&self, pixels: &[u8]) -> Vec<f32> {
        let mut out = Vec::with_capacity(pixels.len() - pixels.len() % 3);
        for (&src, lut) in self.src.iter().zip(&self.lut) {
            out.extend(pixels.chunks_exact(3).map(|px| lut[usize::from(px[src])]));
        }
        out
    }

    /// An image already at the model's size, fed row by row while it is
    /// decoded: the same values as [`Self::planar`], written into a zeroed
    /// tensor (the zeroing overlaps the decoder too). `None` if the feed ends
    /// before the last row.
    fn planar_fed(&self, feed: &mut RowFeed<'_>) -> Option<Vec<f32>> {
        let header = feed.header();
        let (w, h) = (header.width as usize, header.height as usize);
        let plane = w * h;
        let mut out = vec![0f32; 3 * plane];
        let (p0, rest) = out.split_at_mut(plane);
        let (p1, p2) = rest.split_at_mut(plane);
        let rows = p0
            .chunks_mut(w.max(1))
            .zip(p1.chunks_mut(w.max(1)))
            .zip(p2.chunks_mut(w.max(1)));
        for (y, ((r0, r1), r2)) in rows.enumerate() {
            let row = feed.row(y)?;
            for (dst, (&src, lut)) in [r0, r1, r2].into_iter().zip(self.src.iter().zip(&self.lut)) {
                for (o, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                    *o = lut[usize::from(px[src])];
                }
            }
        }
        Some(out)
    }

    /// The canvas, every value starting as the padding's (a `fit` canvas is
    /// all image and is overwritten whole).
    fn padded_canvas(&self, place: Placement, pad: u8) -> Vec<f32> {
        let plane = place.cw * place.ch;
        let mut out: Vec<f32> = Vec::with_capacity(3 * plane);
        for lut in &self.lut {
            out.extend(std::iter::repeat_n(lut[usize::from(pad)], plane));
        }
        out
    }

    /// Resamples `img` bilinearly into the placement's rectangle of a padded
    /// canvas and normalises it, in one pass per output row: each row blends
    /// its two source rows, then each output pixel its two columns. Bands of
    /// rows run over up to `threads` threads.
    fn resized(&self, img: &Image, place: Placement, pad: u8, threads: usize) -> Vec<f32> {
        let mut out = self.padded_canvas(place, pad);
        let sampler = Sampler::new(img.width as usize, img.height as usize, place);
        let stride = img.width as usize * 3;
        let Some([p0, p1, p2]) = image_rows(&mut out, place) else {
            return out;
        };
        let band = RESIZE_BAND_ROWS * place.cw;
        let bands: Vec<_> = p0
            .chunks_mut(band)
            .zip(p1.chunks_mut(band))
            .zip(p2.chunks_mut(band))
            .enumerate()
            .map(|(k, ((b0, b1), b2))| (k * RESIZE_BAND_ROWS, [b0, b1, b2]))
            .collect();
        par::for_each(threads, bands, |(first_row, dst)| {
            let mut blended = vec![0f32; stride];
            let [d0, d1, d2] = dst;
            let rows = d0
                .chunks_mut(place.cw)
                .zip(d1.chunks_mut(place.cw))
                .zip(d2.chunks_mut(place.cw));
            for (((r0, r1), r2), y) in rows.zip(&sampler.y_taps[first_row..]) {
                let top = img.data.get(y.i0 * stride..(y.i0 + 1) * stride);
                let bottom = img.data.get(y.i1 * stride..(y.i1 + 1) * stride);
                let (Some(top), Some(bottom)) = (top, bottom) else {
                    continue;
                };
                self.output_row(&sampler, top, bottom, y.f, &mut blended, [r0, r1, r2]);
            }
        });
        out
    }

    /// [`Self::resized`] for an image fed row by row while it is decoded, on
    /// the calling thread: the same arithmetic per output row, so the same
    /// values. `None` if the feed ends before a row it needs.
    fn resized_fed(&self, feed: &mut RowFeed<'_>, place: Placement, pad: u8) -> Option<Vec<f32>> {
        let header = feed.header();
        let mut out = self.padded_canvas(place, pad);
        let sampler = Sampler::new(header.width as usize, header.height as usize, place);
        let Some([p0, p1, p2]) = image_rows(&mut out, place) else {
            return Some(out);
        };
        let mut blended = vec![0f32; header.width as usize * 3];
        let rows = p0
            .chunks_mut(place.cw)
            .zip(p1.chunks_mut(place.cw))
            .zip(p2.chunks_mut(place.cw));
        for (((r0, r1), r2), y) in rows.zip(&sampler.y_taps) {
            let top = feed.row(y.i0)?;
            let bottom = feed.row(y.i1)?;
            self.output_row(&sampler, top, bottom, y.f, &mut blended, [r0, r1, r2]);
        }
        Some(out)
    }

    /// One output row: source rows `top` and `bottom` blended by `fy`, then
    /// resampled across into the placement's span of the three planes' rows.
    fn output_row(
        &self,
        sampler: &Sampler,
        top: &[u8],
        bottom: &[u8],
        fy: f32,
        blended: &mut [f32],
        rows: [&mut [f32]; 3],
    ) {
        for ((v, &t), &b) in blended.iter_mut().zip(top).zip(bottom) {
            let t = f32::from(t);
            *v = t + fy * (f32::from(b) - t);
        }
        let span = sampler.span.clone();
        let [r0, r1, r2] = rows;
        let (Some(r0), Some(r1), Some(r2)) = (
            r0.get_mut(span.clone()),
            r1.get_mut(span.clone()),
            r2.get_mut(span),
        ) else {
            return;
        };
        if self.src[0] == 0 {
            resample_row::<false>(blended, &sampler.x_taps, [r0, r1, r2], self.mul, self.add);
        } else {
            resample_row::<true>(blended, &sampler.x_taps, [r0, r1, r2], self.mul, self.add);
        }
    }
}

/// Where each output pixel of a placement reads its source: column taps as
/// offsets into an interleaved row (3 values a pixel), row taps, and the
/// span of a canvas row the image covers.
struct Sampler {
    x_taps: Vec<Tap>,
    y_taps: Vec<Tap>,
    span: std::ops::Range<usize>,
}

impl Sampler {
    fn new(src_w: usize, src_h: usize, place: Placement) -> Self {
        let x_taps = taps(src_w, place.rw)
            .into_iter()
            .map(|t| Tap {
                i0: 3 * t.i0,
                i1: 3 * t.i1,
                f: t.f,
            })
            .collect();
        Sampler {
            x_taps,
            y_taps: taps(src_h, place.rh),
            span: place.px..place.px + place.rw,
        }
    }
}

/// The rows the image covers in each of the canvas's three planes.
fn image_rows(out: &mut [f32], place: Placement) -> Option<[&mut [f32]; 3]> {
    let plane = place.cw * place.ch;
    let rows = place.py * place.cw..(place.py + place.rh) * place.cw;
    let mut planes = out
        .chunks_mut(plane.max(1))
        .filter_map(|p| p.get_mut(rows.clone()));
    Some([planes.next()?, planes.next()?, planes.next()?])
}

/// One output row from a vertically blended source row (interleaved, 3 values
/// a pixel): each pixel lerps its two source columns, channel by channel, and
/// normalises. `REVERSE` reads the source's channels in reverse (RGB <-> BGR);
/// a constant, so the indexing below needs no checks and the loop no branch.
fn resample_row<const REVERSE: bool>(
    blended: &[f32],
    x_taps: &[Tap],
    planes: [&mut [f32]; 3],
    mul: [f32; 3],
    add: [f32; 3],
) {
    let (first, last) = if REVERSE { (2, 0) } else { (0, 2) };
    let [r0, r1, r2] = planes;
    for (((o0, o1), o2), x) in r0.iter_mut().zip(r1).zip(r2).zip(x_taps) {
        let (Some(l), Some(r)) = (blended.get(x.i0..x.i0 + 3), blended.get(x.i1..x.i1 + 3)) else {
            continue;
        };
        let (Ok(l), Ok(r)) = (<&[f32; 3]>::try_from(l), <&[f32; 3]>::try_from(r)) else {
            continue;
        };
        *o0 = (l[first] + x.f * (r[first] - l[first])) * mul[0] + add[0];
        *o1 = (l[1] + x.f * (r[1] - l[1])) * mul[1] + add[1];
        *o2 = (l[last] + x.f * (r[last] - l[last])) * mul[2] + add[2];
    }
}

/// Output rows one resampling work item writes.
const RESIZE_BAND_ROWS: usize = 16;

/// Where the resized image sits on the model's canvas (all in pixels).
#[derive(Debug, Clone, Copy)]
struct Placement {
    rw: usize,
    rh: usize,
    cw: usize,
    ch: usize,
    px: usize,
    py: usize,
}

/// One output coordinate's two source samples and the weight of the second.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    i0: usize,
    i1: usize,
    f: f32,
}

/// OpenCV's `INTER_LINEAR` sampling (what PaddleOCR and YOLO pre-processing
/// call): output pixel `d` reads source position `(d + 0.5) * src / dst - 0.5`,
/// clamped to the image, from its two neighbours; no widening when shrinking.
fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f64 / dst.max(1) as f64;
    let last = src.saturating_sub(1);
    (0..dst)
        .map(|d| {
            let pos = (d as f64 + 0.5) * scale - 0.5;
            let floor = pos.floor();
            let (i0, f) = if floor < 0.0 {
                (0, 0.0)
            } else if floor as usize >= last {
                (last, 0.0)
            } else {
                (floor as usize, pos - floor)
            };
            Tap {
                i0,
                i1: (i0 + 1).min(last),
                f: f as f32,
            }
        })
        .collect()
}

/// The resized size and placement of a `w`x`h` image.
pub fn geometry(resize: &Resize, w: u32, h: u32) -> (u32, u32, u32, u32, u32, u32) {
    match *resize {
        Resize::Fit {
            limit_side_len,
            limit_type,
            multiple,
        } => {
            let (long, short) = (w.max(h) as f64, w.min(h) as f64);
            let limit = limit_side_len as f64;
            let ratio = match limit_type {
                LimitType::Max if long > limit => limit / long,
                LimitType::Min if short < limit => limit / short,
                _ => 1.0,
            };
            let m = multiple.max(1) as f64;
            let side =
                |s: u32| (((s as f64 * ratio).trunc() / m).round_ties_even() * m).max(m) as u32;
            let (rw, rh) = (side(w), side(h));
            (rw, rh, rw, rh, 0, 0)
        }
        Resize::Letterbox {
            width,
            height,
            center,
            ..
        } => {
            let r = (width as f64 / w as f64).min(height as f64 / h as f64);
            let rw = ((w as f64 * r) as u32).clamp(1, width);
            let rh = ((h as f64 * r) as u32).clamp(1, height);
            let (px, py) = if center {
                ((width - rw) / 2, (height - rh) / 2)
            } else {
                (0, 0)
            };
            (rw, rh, width, height, px, py)
        }
    }
}

/// The node reads three interleaved channels.
fn accepts(format: PixelFormat) -> Result<(), ToTensorError> {
    match format {
        PixelFormat::Rgb8 | PixelFormat::Bgr8 => Ok(()),
        other => Err(ToTensorError::Format(other.as_str())),
    }
}

/// What one run of the node computes, decided from the image's size alone.
struct Layout {
    norm: Normaliser,
    place: Placement,
    pad: u8,
    /// The image is already at the model's size: no resampling.
    in_place: bool,
    meta: Vec<f32>,
}

impl Layout {
    fn new(
        cfg: &ToTensorConfig,
        width: u32,
        height: u32,
        format: PixelFormat,
    ) -> Result<Self, ToTensorError> {
        accepts(format)?;
        if width == 0 || height == 0 {
            return Err(ToTensorError::Inconsistent);
        }
        let (rw, rh, cw, ch, px, py) = geometry(&cfg.resize, width, height);
        if cw > MAX_SIDE || ch > MAX_SIDE || rw == 0 || rh == 0 {
            return Err(ToTensorError::Size(cw, ch));
        }
        let pad = match cfg.resize {
            Resize::Letterbox { pad, .. } => pad,
            Resize::Fit { .. } => 0,
        };
        Ok(Layout {
            norm: Normaliser::new(cfg, format),
            place: Placement {
                rw: rw as usize,
                rh: rh as usize,
                cw: cw as usize,
                ch: ch as usize,
                px: px as usize,
                py: py as usize,
            },
            pad,
            in_place: (rw, rh, cw, ch) == (width, height, width, height),
            meta: vec![
                width as f32,
                height as f32,
                rw as f32 / width as f32,
                rh as f32 / height as f32,
                px as f32,
                py as f32,
            ],
        })
    }

    fn tensors(self, cfg: &ToTensorConfig, data: Vec<f32>) -> Vec<Tensor> {
        vec![
            Tensor {
                name: cfg.name.clone(),
                shape: vec![1, 3, self.place.ch as u32, self.place.cw as u32],
                data: data.into(),
            },
            Tensor {
                name: "meta".into(),
                shape: vec![6],
                data: self.meta.into(),
            },
        ]
    }
}

/// Runs the node: returns the model tensor and the `meta` tensor.
/// Resampling runs over up to `threads` threads ([`par::for_each`]).
pub fn to_tensor(
    img: &Image,
    cfg: &ToTensorConfig,
    threads: usize,
) -> Result<Vec<Tensor>, ToTensorError> {
    accepts(img.format)?;
    if !img.is_consistent() {
        return Err(ToTensorError::Inconsistent);
    }
    let layout = Layout::new(cfg, img.width, img.height, img.format)?;
    // A frame already at the model's size is read in place: no resampling.
    let data = if layout.in_place {
        layout.norm.planar(&img.data)
    } else {
        layout.norm.resized(img, layout.place, layout.pad, threads)
    };
    Ok(layout.tensors(cfg, data))
}

/// [`to_tensor`] on an image that is still being decoded, reading its rows as
/// they arrive (one thread: the decoder has the other). The same tensors,
/// value for value; `None` if the feed ends before the image does (the
/// decoder failed, and its error is the frame's).
pub fn to_tensor_fed(
    feed: &mut RowFeed<'_>,
    cfg: &ToTensorConfig,
) -> Option<Result<Vec<Tensor>, ToTensorError>> {
    let header = feed.header();
    let layout = match Layout::new(cfg, header.width, header.height, header.format) {
        Ok(layout) => layout,
        Err(e) => return Some(Err(e)),
    };
    let data = if layout.in_place {
        layout.norm.planar_fed(feed)?
    } else {
        layout.norm.resized_fed(feed, layout.place, layout.pad)?
    };
    Some(Ok(layout.tensors(cfg, data)))
}

// The node's part in `nodes::NativeKind` / `NativeNode`: inputs, config, run.

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if inputs != 1 {
        return Err("to_tensor takes exactly one input, an image".into());
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<ToTensorConfig, String> {
    let config: ToTensorConfig = typed_config(table)?;
    config.validate()?;
    Ok(config)
}

pub(super) fn run(
    config: &ToTensorConfig,
    inputs: &[(String, Value)],
    ctx: RunContext,
) -> Result<Value, NodeFailure> {
    match inputs.first() {
        Some((_, Value::Image(img))) => to_tensor(img, config, ctx.threads)
            .map(|ts| Value::Tensors(Arc::new(ts)))
            .map_err(|e| NodeFailure::Node(e.to_string())),
        other => Err(NodeFailure::Node(format!(
            "expects an image, got {}",
            kind_of(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letterbox_side_of_zero_is_refused_at_load() {
        let cfg = |width, height| ToTensorConfig {
            resize: Resize::Letterbox {
                width,
                height,
                pad: 114,
                center: false,
            },
            ..serde_json::from_str::<ToTensorConfig>(
                r#"{"channels":"rgb","resize":{"mode":"letterbox","width":8,"height":8}}"#,
            )
            .unwrap_or_else(|e| unreachable!("{e}"))
        };
        assert!(cfg(0, 5).validate().is_err());
        assert!(cfg(5, MAX_SIDE + 1).validate().is_err());
        assert_eq!(cfg(640, 640).validate(), Ok(()));
    }

    /// The DB detector's input config (long side capped at 640, (x/255 - 0.5) / 0.5).
    fn db_fit_640(channels: Channels) -> ToTensorConfig {
        ToTensorConfig {
            name: "x".into(),
            resize: Resize::Fit {
                limit_side_len: 640,
                limit_type: LimitType::Max,
                multiple: 32,
            },
            channels,
            scale: 1.0 / 255.0,
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }

    fn image(w: u32, h: u32, format: PixelFormat, px: [u8; 3]) -> Image {
        Image {
            width: w,
            height: h,
            format,
            data: (0..w * h).flat_map(|_| px).collect(),
        }
    }

    #[test]
    fn fit_rounds_each_side_to_a_multiple_of_32_like_paddleocr() {
        let fit = |len, t| Resize::Fit {
            limit_side_len: len,
            limit_type: t,
            multiple: 32,
        };
        // 640x480 under a 640 cap: unchanged (both multiples of 32).
        assert_eq!(
            geometry(&fit(640, LimitType::Max), 640, 480),
            (640, 480, 640, 480, 0, 0)
        );
        // 1280x720 capped at 640: 640x360 -> 640x352 (360/32 = 11.25 rounds to 11).
        assert_eq!(
            geometry(&fit(640, LimitType::Max), 1280, 720),
            (640, 352, 640, 352, 0, 0)
        );
        // Python's round() is half-to-even: 336/32 = 10.5 rounds to 10, not 11.
        assert_eq!(geometry(&fit(640, LimitType::Max), 640, 336).1, 320);
        // RapidOCR's default: short side raised to 736: 640x480 -> 981x736 -> 992x736.
        assert_eq!(
            geometry(&fit(736, LimitType::Min), 640, 480),
            (992, 736, 992, 736, 0, 0)
        );
        // Tiny images never collapse to zero.
        assert_eq!(geometry(&fit(640, LimitType::Max), 5, 5).0, 32);
    }

    #[test]
    fn letterbox_keeps_the_aspect_ratio_and_pads() {
        let lb = Resize::Letterbox {
            width: 416,
            height: 416,
            pad: 114,
            center: false,
        };
        assert_eq!(geometry(&lb, 640, 480), (416, 312, 416, 416, 0, 0));
        let centred = Resize::Letterbox {
            width: 640,
            height: 640,
            pad: 114,
            center: true,
        };
        assert_eq!(geometry(&centred, 1280, 720), (640, 360, 640, 640, 0, 140));
    }

    #[test]
    fn a_frame_at_the_model_size_is_normalised_in_place() {
        // 320x256 fits `fit` at 640 unchanged: no resize, the frame's own bytes are read.
        let mut img = image(320, 256, PixelFormat::Bgr8, [0; 3]);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i * 37 % 251) as u8;
        }
        let cfg = db_fit_640(Channels::Rgb);
        let out = to_tensor(&img, &cfg, 2).unwrap_or_default();
        assert_eq!(out[0].shape, vec![1, 3, 256, 320]);
        let norm = |v: u8| (f32::from(v) * cfg.scale - 0.5) / 0.5;
        let plane = 320 * 256;
        // RGB planes from BGR bytes: R is byte 2, B byte 0, of each pixel.
        assert_eq!(out[0].data.f32().unwrap()[0], norm(img.data[2]));
        assert_eq!(out[0].data.f32().unwrap()[2 * plane + 1], norm(img.data[3]));
        assert_eq!(
            out[0].data.f32().unwrap()[plane - 1],
            norm(img.data[3 * plane - 1])
        );
    }

    #[test]
    fn splitting_the_work_over_threads_changes_no_value() {
        // 200x150 = 30,000 pixels: two runs, so two threads really split it.
        let data = (0..200 * 150 * 3).map(|i| (i * 31 % 253) as u8).collect();
        let img = Image {
            width: 200,
            height: 150,
            format: PixelFormat::Rgb8,
            data,
        };
        let cfg = db_fit_640(Channels::Bgr);
        let serial = to_tensor(&img, &cfg, 1).unwrap_or_default();
        assert_eq!(serial[0].shape, vec![1, 3, 160, 192]);
        for threads in [2, 3, 8] {
            assert_eq!(to_tensor(&img, &cfg, threads).unwrap_or_default(), serial);
        }
    }

    /// A feed that already holds every row of `img` (or only its first
    /// `rows`), as a decoder would have sent them.
    fn feed_of(img: &Image, rows: usize) -> RowFeed<'_> {
        use crate::nodes::row_feed::{FeedHeader, FeedSender, FEED_ROWS};
        let header = FeedHeader {
            width: img.width,
            height: img.height,
            format: img.format,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let mut sender = FeedSender::new(vec![tx]);
        let stride = header.stride();
        let sent = img.data.get(..rows * stride).unwrap_or(&img.data);
        for band in sent.chunks(FEED_ROWS * stride) {
            sender.send(band);
        }
        RowFeed::new(header, rx)
    }

    #[test]
    fn rows_fed_while_decoding_give_the_same_tensor_value_for_value() {
        let patterned = |w: u32, h: u32, format| Image {
            width: w,
            height: h,
            format,
            data: (0..w as usize * h as usize * 3)
                .map(|i| (i * 31 % 253) as u8)
                .collect(),
        };
        let centred = ToTensorConfig {
            resize: Resize::Letterbox {
                width: 256,
                height: 256,
                pad: 114,
                center: true,
            },
            ..db_fit_640(Channels::Rgb)
        };
        let cases = [
            // Resampled (200x150 -> 192x160), either channel order.
            (
                patterned(200, 150, PixelFormat::Rgb8),
                db_fit_640(Channels::Bgr),
            ),
            (
                patterned(200, 150, PixelFormat::Bgr8),
                db_fit_640(Channels::Bgr),
            ),
            // Already the model's size: read in place.
            (
                patterned(320, 256, PixelFormat::Bgr8),
                db_fit_640(Channels::Rgb),
            ),
            (
                patterned(320, 256, PixelFormat::Bgr8),
                db_fit_640(Channels::Bgr),
            ),
            // Letterboxed and centred: padding above and below.
            (patterned(300, 170, PixelFormat::Rgb8), centred),
        ];
        for (img, cfg) in &cases {
            let direct = to_tensor(img, cfg, 1);
            assert!(direct.is_ok(), "{direct:?}");
            let fed = to_tensor_fed(&mut feed_of(img, img.height as usize), cfg);
            assert!(fed == Some(direct), "{}x{} {cfg:?}", img.width, img.height);
        }
    }

    #[test]
    fn a_feed_that_ends_early_yields_no_tensor() {
        let img = image(320, 256, PixelFormat::Bgr8, [9, 8, 7]);
        for cfg in [
            db_fit_640(Channels::Bgr),
            raw_letterbox("x", 100, 100, 0, Channels::Rgb),
        ] {
            assert_eq!(
                to_tensor_fed(&mut feed_of(&img, 100), &cfg),
                None,
                "{cfg:?}"
            );
        }
        // What the node refuses it refuses before reading any row.
        let gray = Image {
            width: 4,
            height: 4,
            format: PixelFormat::Gray8,
            data: vec![0; 16],
        };
        assert_eq!(
            to_tensor_fed(&mut feed_of(&gray, 0), &db_fit_640(Channels::Bgr)),
            Some(Err(ToTensorError::Format("gray8")))
        );
    }

    /// A top-left letterbox with raw 0-255 values (YOLOX-style), so tests read pixels back.
    fn raw_letterbox(
        name: &str,
        width: u32,
        height: u32,
        pad: u8,
        channels: Channels,
    ) -> ToTensorConfig {
        ToTensorConfig {
            name: name.into(),
            resize: Resize::Letterbox {
                width,
                height,
                pad,
                center: false,
            },
            channels,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    #[test]
    fn resampling_follows_opencv_inter_linear() {
        // Shrinking 4 -> 2 reads positions 0.5 and 2.5: the mean of each pair,
        // no wider kernel. Growing 2 -> 4 reads -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        let tap = |i0, i1, f| Tap { i0, i1, f };
        assert_eq!(taps(4, 2), vec![tap(0, 1, 0.5), tap(2, 3, 0.5)]);
        assert_eq!(
            taps(2, 4),
            vec![
                tap(0, 1, 0.0),
                tap(0, 1, 0.25),
                tap(0, 1, 0.75),
                tap(1, 1, 0.0)
            ]
        );
        // Through the node: a 4x2 frame, one row 0,100,200,250 and one all 50,
        // to a 2x1 tensor (letterbox, raw values): columns then rows are averaged.
        let rows: [[u8; 4]; 2] = [[0, 100, 200, 250], [50, 50, 50, 50]];
        let data = rows.iter().flatten().flat_map(|&v| [v, v, v]).collect();
        let img = Image {
            width: 4,
            height: 2,
            format: PixelFormat::Rgb8,
            data,
        };
        let cfg = raw_letterbox("x", 2, 1, 0, Channels::Rgb);
        let out = to_tensor(&img, &cfg, 1).unwrap_or_default();
        assert_eq!(out[0].shape, vec![1, 3, 1, 2]);
        // Column pairs (0,100) and (200,250) over row pair (top, 50s), weight 0.5 each way.
        let expect = [(50.0 + 50.0) / 2.0, (225.0 + 50.0) / 2.0];
        for c in 0..3 {
            assert_eq!(
                &out[0].data.f32().unwrap()[2 * c..2 * c + 2],
                &expect,
                "channel {c}"
            );
        }
    }

    #[test]
    fn normalises_reorders_channels_and_emits_meta() {
        let cfg = raw_letterbox("images", 8, 8, 114, Channels::Bgr);
        let out =
            to_tensor(&image(8, 4, PixelFormat::Rgb8, [10, 20, 30]), &cfg, 2).unwrap_or_default();
        assert_eq!(out.len(), 2);
        let t = &out[0];
        assert_eq!(
            (t.name.as_str(), t.shape.as_slice()),
            ("images", &[1, 3, 8, 8][..])
        );
        // Plane 0 is blue (30) on the image rows, pad (114) below.
        assert_eq!(t.data.f32().unwrap()[0], 30.0);
        assert_eq!(t.data.f32().unwrap()[64], 20.0);
        assert_eq!(t.data.f32().unwrap()[128], 10.0);
        assert_eq!(t.data.f32().unwrap()[8 * 4], 114.0, "first padded row");
        assert_eq!(
            out[1].data.f32().unwrap(),
            vec![8.0, 4.0, 1.0, 1.0, 0.0, 0.0]
        );

        let db = db_fit_640(Channels::Bgr);
        let out =
            to_tensor(&image(64, 32, PixelFormat::Bgr8, [255, 0, 255]), &db, 2).unwrap_or_default();
        assert_eq!(out[0].shape, vec![1, 3, 32, 64]);
        assert!(
            (out[0].data.f32().unwrap()[0] - 1.0).abs() < 1e-6
                && (out[0].data.f32().unwrap()[64 * 32] + 1.0).abs() < 1e-6
        );
    }

    #[test]
    fn refuses_what_it_cannot_handle() {
        let cfg = ToTensorConfig {
            name: "x".into(),
            resize: Resize::Letterbox {
                width: 8,
                height: 8,
                pad: 0,
                center: false,
            },
            channels: Channels::Rgb,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let gray = Image {
            width: 2,
            height: 2,
            format: PixelFormat::Gray8,
            data: vec![0; 4],
        };
        assert_eq!(
            to_tensor(&gray, &cfg, 2),
            Err(ToTensorError::Format("gray8"))
        );
        let broken = Image {
            width: 2,
            height: 2,
            format: PixelFormat::Rgb8,
            data: vec![0; 5],
        };
        assert_eq!(
            to_tensor(&broken, &cfg, 2),
            Err(ToTensorError::Inconsistent)
        );
        let huge = ToTensorConfig {
            resize: Resize::Letterbox {
                width: 10_000,
                height: 8,
                pad: 0,
                center: false,
            },
            ..cfg
        };
        assert_eq!(
            to_tensor(&image(2, 2, PixelFormat::Rgb8, [0; 3]), &huge, 2),
            Err(ToTensorError::Size(10_000, 8))
        );
    }
}
