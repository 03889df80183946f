//! The native pre-processing node (`kind = "to_tensor"`): resize an image
//! for a model and lay it out as a normalised NCHW f32 tensor.
//!
//! Pixel work is the host's job: a SIMD resize (fast_image_resize, with the
//! same bilinear interpolation OpenCV's INTER_LINEAR uses, so we agree with the
//! Python reference implementations) and a per-channel lookup table that does
//! channel reordering and `(x * scale - mean) / std` in one pass, writing
//! planar output. Two resize modes cover the models we run:
//!
//! * `fit` (DBNet-style): scale by the side limit, then round each side to a
//!   multiple of 32, as PaddleOCR's `resize_image_type0` does;
//! * `letterbox` (YOLO-style): keep the aspect ratio inside a fixed canvas,
//!   padded with a constant, at the top-left (YOLOX) or centred (YOLOv8).
//!
//! Besides the model input the node emits a `meta` tensor
//! `[src_w, src_h, scale_x, scale_y, pad_x, pad_y]` (model = src * scale +
//! pad), which post-processing nodes use to map results back to frame pixels.

use std::borrow::Cow;
use std::sync::Arc;

use fast_image_resize::images::{Image as FirImage, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde::Deserialize;

use crate::value::{Image, PixelFormat, Tensor};

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
    #[error("resize failed: {0}")]
    Resize(String),
}

/// Per-channel lookup tables: output plane `c` = `lut[c][pixel[src[c]]]`.
struct Normaliser {
    src: [usize; 3],
    lut: [[f32; 256]; 3],
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
        Normaliser { src, lut }
    }

    /// Writes an interleaved 3-byte image into three planes.
    fn planar(&self, pixels: &[u8], out: &mut [f32]) {
        let plane = out.len() / 3;
        let (p0, rest) = out.split_at_mut(plane);
        let (p1, p2) = rest.split_at_mut(plane);
        let [s0, s1, s2] = self.src;
        let [l0, l1, l2] = &self.lut;
        for (((px, a), b), c) in pixels.chunks_exact(3).zip(p0).zip(p1).zip(p2) {
            *a = l0[px[s0] as usize];
            *b = l1[px[s1] as usize];
            *c = l2[px[s2] as usize];
        }
    }
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

/// Runs the node: returns the model tensor and the `meta` tensor.
pub fn to_tensor(img: &Image, cfg: &ToTensorConfig) -> Result<Vec<Tensor>, ToTensorError> {
    if !matches!(img.format, PixelFormat::Rgb8 | PixelFormat::Bgr8) {
        return Err(ToTensorError::Format(img.format.as_str()));
    }
    if !img.is_consistent() || img.width == 0 || img.height == 0 {
        return Err(ToTensorError::Inconsistent);
    }
    let (rw, rh, cw, ch, px, py) = geometry(&cfg.resize, img.width, img.height);
    if cw > MAX_SIDE || ch > MAX_SIDE || rw == 0 || rh == 0 {
        return Err(ToTensorError::Size(cw, ch));
    }
    // A frame already at the model's size is read in place, not copied.
    let resized = if (rw, rh) == (img.width, img.height) {
        Cow::Borrowed(img.data.as_slice())
    } else {
        Cow::Owned(resize_rgb(img, rw, rh)?)
    };
    // Place into the canvas (only letterbox pads).
    let canvas = if (rw, rh) == (cw, ch) {
        resized
    } else {
        let pad = match cfg.resize {
            Resize::Letterbox { pad, .. } => pad,
            Resize::Fit { .. } => 0,
        };
        let mut canvas = vec![pad; cw as usize * ch as usize * 3];
        let row = rw as usize * 3;
        for (y, src) in resized.chunks_exact(row).enumerate() {
            let start = ((py as usize + y) * cw as usize + px as usize) * 3;
            if let Some(dst) = canvas.get_mut(start..start + row) {
                dst.copy_from_slice(src);
            }
        }
        Cow::Owned(canvas)
    };
    let mut data = vec![0f32; 3 * cw as usize * ch as usize];
    Normaliser::new(cfg, img.format).planar(&canvas, &mut data);
    let meta = vec![
        img.width as f32,
        img.height as f32,
        rw as f32 / img.width as f32,
        rh as f32 / img.height as f32,
        px as f32,
        py as f32,
    ];
    Ok(vec![
        Tensor {
            name: cfg.name.clone(),
            shape: vec![1, 3, ch, cw],
            data: Arc::new(data),
        },
        Tensor {
            name: "meta".into(),
            shape: vec![6],
            data: Arc::new(meta),
        },
    ])
}

/// Bilinear resize of a 3-byte-per-pixel image (a copy when the size is unchanged).
pub fn resize_rgb(img: &Image, w: u32, h: u32) -> Result<Vec<u8>, ToTensorError> {
    if (w, h) == (img.width, img.height) {
        return Ok(img.data.clone());
    }
    let src = ImageRef::new(img.width, img.height, &img.data, PixelType::U8x3)
        .map_err(|e| ToTensorError::Resize(e.to_string()))?;
    let mut dst = FirImage::new(w, h, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear)),
        )
        .map_err(|e| ToTensorError::Resize(e.to_string()))?;
    Ok(dst.into_vec())
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
        let out = to_tensor(&img, &cfg).unwrap_or_default();
        assert_eq!(out[0].shape, vec![1, 3, 256, 320]);
        let norm = |v: u8| (f32::from(v) * cfg.scale - 0.5) / 0.5;
        let plane = 320 * 256;
        // RGB planes from BGR bytes: R is byte 2, B byte 0, of each pixel.
        assert_eq!(out[0].data[0], norm(img.data[2]));
        assert_eq!(out[0].data[2 * plane + 1], norm(img.data[3]));
        assert_eq!(out[0].data[plane - 1], norm(img.data[3 * plane - 1]));
    }

    #[test]
    fn normalises_reorders_channels_and_emits_meta() {
        let cfg = ToTensorConfig {
            name: "images".into(),
            resize: Resize::Letterbox {
                width: 8,
                height: 8,
                pad: 114,
                center: false,
            },
            channels: Channels::Bgr,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let out =
            to_tensor(&image(8, 4, PixelFormat::Rgb8, [10, 20, 30]), &cfg).unwrap_or_default();
        assert_eq!(out.len(), 2);
        let t = &out[0];
        assert_eq!(
            (t.name.as_str(), t.shape.as_slice()),
            ("images", &[1, 3, 8, 8][..])
        );
        // Plane 0 is blue (30) on the image rows, pad (114) below.
        assert_eq!(t.data[0], 30.0);
        assert_eq!(t.data[64], 20.0);
        assert_eq!(t.data[128], 10.0);
        assert_eq!(t.data[8 * 4], 114.0, "first padded row");
        assert_eq!(*out[1].data, vec![8.0, 4.0, 1.0, 1.0, 0.0, 0.0]);

        let db = db_fit_640(Channels::Bgr);
        let out =
            to_tensor(&image(64, 32, PixelFormat::Bgr8, [255, 0, 255]), &db).unwrap_or_default();
        assert_eq!(out[0].shape, vec![1, 3, 32, 64]);
        assert!((out[0].data[0] - 1.0).abs() < 1e-6 && (out[0].data[64 * 32] + 1.0).abs() < 1e-6);
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
        assert_eq!(to_tensor(&gray, &cfg), Err(ToTensorError::Format("gray8")));
        let broken = Image {
            width: 2,
            height: 2,
            format: PixelFormat::Rgb8,
            data: vec![0; 5],
        };
        assert_eq!(to_tensor(&broken, &cfg), Err(ToTensorError::Inconsistent));
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
            to_tensor(&image(2, 2, PixelFormat::Rgb8, [0; 3]), &huge),
            Err(ToTensorError::Size(10_000, 8))
        );
    }
}
