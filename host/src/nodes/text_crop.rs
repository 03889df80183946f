//! The native text-crop node (`kind = "text_crop"`): cut each detected text
//! box out of the frame, upright, at the recogniser's height, and batch them.
//!
//! A box is a quadrilateral (text may be rotated or seen in perspective). Like
//! PaddleOCR's `get_rotate_crop_image`, each is rectified with a perspective
//! transform to a `w` x `h` rectangle whose sides are the box's longer edges,
//! and turned upright when it is much taller than wide. Here the rectification
//! and the resize to the recogniser's input height are one bilinear sampling
//! pass straight from the frame (no intermediate crop image), written directly
//! as normalised NCHW floats. All crops share one batch, padded on the right
//! with zeros to the widest one (`width = max(min_width, height * widest ratio)`,
//! as RapidOCR sizes its batches).
//!
//! The node keeps one crop per box, in order, so the recogniser's i-th line
//! belongs to the detector's i-th box.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::value::{Image, PixelFormat, Tensor};

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
        if !(1..=1000).contains(&self.max_boxes) {
            return Err("max_boxes must be in 1..=1000".into());
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

/// Crops, rectifies, resizes and batches every box: returns `x` [N,3,H,W].
pub fn text_crop(
    img: &Image,
    boxes: &[[[f32; 2]; 4]],
    cfg: &TextCropConfig,
) -> Result<Tensor, TextCropError> {
    if !matches!(img.format, PixelFormat::Rgb8 | PixelFormat::Bgr8) || !img.is_consistent() {
        return Err(TextCropError::Format(img.format.as_str()));
    }
    let h_out = cfg.height.max(1) as usize;
    struct Plan {
        hm: [f64; 9],
        crop_w: f64,
        crop_h: f64,
        rotate: bool,
        out_w: usize,
    }
    let mut plans = Vec::new();
    for quad in boxes.iter().take(cfg.max_boxes) {
        let crop_w = dist(quad[0], quad[1]).max(dist(quad[2], quad[3])).max(1.0) as f64;
        let crop_h = dist(quad[0], quad[3]).max(dist(quad[1], quad[2])).max(1.0) as f64;
        let hm = homography(crop_w, crop_h, quad)
            .unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let rotate = crop_h / crop_w >= 1.5;
        let (w, h) = if rotate {
            (crop_h, crop_w)
        } else {
            (crop_w, crop_h)
        };
        let out_w =
            ((h_out as f64 * w / h).ceil() as usize).clamp(1, cfg.max_width.max(1) as usize);
        plans.push(Plan {
            hm,
            crop_w,
            crop_h,
            rotate,
            out_w,
        });
    }
    let batch_w = plans
        .iter()
        .map(|p| p.out_w)
        .max()
        .unwrap_or(0)
        .max(cfg.min_width as usize)
        .min(cfg.max_width.max(1) as usize);
    let n = plans.len();
    let plane = h_out * batch_w;
    let mut data = vec![0f32; n * 3 * plane];
    // BGR planes, as PaddleOCR feeds its recogniser.
    let order: [usize; 3] = if img.format == PixelFormat::Bgr8 {
        [0, 1, 2]
    } else {
        [2, 1, 0]
    };
    let (iw, ih) = (img.width as i64, img.height as i64);
    let px = |x: i64, y: i64, c: usize| -> f32 {
        let (x, y) = (x.clamp(0, iw - 1), y.clamp(0, ih - 1));
        img.data[((y * iw + x) * 3) as usize + c] as f32
    };
    for (i, p) in plans.iter().enumerate() {
        let base = i * 3 * plane;
        let (rot_w, rot_h) = if p.rotate {
            (p.crop_h, p.crop_w)
        } else {
            (p.crop_w, p.crop_h)
        };
        for v in 0..h_out {
            for u in 0..p.out_w {
                // Target pixel centre in the upright crop's continuous coordinates.
                let uc = (u as f64 + 0.5) * rot_w / p.out_w as f64;
                let vc = (v as f64 + 0.5) * rot_h / h_out as f64;
                // Undo np.rot90 (counter-clockwise) for tall boxes.
                let (cx, cy) = if p.rotate {
                    (p.crop_w - vc, uc)
                } else {
                    (uc, vc)
                };
                let hm = &p.hm;
                let den = hm[6] * cx + hm[7] * cy + hm[8];
                let sx = (hm[0] * cx + hm[1] * cy + hm[2]) / den - 0.5;
                let sy = (hm[3] * cx + hm[4] * cy + hm[5]) / den - 0.5;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
                let (x0, y0) = (x0 as i64, y0 as i64);
                for (c, &src_c) in order.iter().enumerate() {
                    let top = px(x0, y0, src_c) * (1.0 - fx) + px(x0 + 1, y0, src_c) * fx;
                    let bottom =
                        px(x0, y0 + 1, src_c) * (1.0 - fx) + px(x0 + 1, y0 + 1, src_c) * fx;
                    let value = top * (1.0 - fy) + bottom * fy;
                    data[base + c * plane + v * batch_w + u] = (value / 255.0 - 0.5) / 0.5;
                }
            }
        }
    }
    Ok(Tensor {
        name: cfg.name.clone(),
        shape: vec![n as u32, 3, h_out as u32, batch_w as u32],
        data: Arc::new(data),
    })
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
        let t = text_crop(&halves(), &[quad], &cfg()).unwrap_or_else(panic_free);
        // ratio 4 -> 192 px wide at height 48; batch padded to 320.
        assert_eq!(t.shape, vec![1, 3, 48, 320]);
        let at = |u: usize| t.data[10 * 320 + u];
        assert!((at(5) + 1.0).abs() < 0.01, "black maps to -1: {}", at(5));
        assert!((at(180) - 1.0).abs() < 0.01, "white maps to 1: {}", at(180));
        assert_eq!(at(250), 0.0, "padding is zero");
    }

    fn panic_free(e: TextCropError) -> Tensor {
        Tensor {
            name: e.to_string(),
            shape: vec![],
            data: Arc::new(vec![]),
        }
    }

    #[test]
    fn tall_boxes_are_turned_upright() {
        // A 20x80 box on the boundary between halves, rotated: width becomes 80.
        let quad = [[90.0, 10.0], [110.0, 10.0], [110.0, 90.0], [90.0, 90.0]];
        let t = text_crop(&halves(), &[quad], &cfg()).unwrap_or_else(panic_free);
        assert_eq!(t.shape, vec![1, 3, 48, 320]);
        // Upright after a counter-clockwise turn: the right (white) half is on top.
        let top = t.data[5 * 320 + 50];
        let bottom = t.data[42 * 320 + 50];
        assert!(top > 0.9 && bottom < -0.9, "top {top} bottom {bottom}");
    }

    #[test]
    fn boxes_json_is_checked() {
        let ok = json!({"boxes":[{"points":[[0,0],[1,0],[1,1],[0,1]],"score":0.9}]});
        assert_eq!(parse_boxes(&ok).map(|b| b.len()), Ok(1));
        assert!(parse_boxes(&json!({"boxes":[{"points":[[0,0]]}]})).is_err());
        assert!(parse_boxes(&json!({"nope":1})).is_err());
        let empty = text_crop(&halves(), &[], &cfg()).unwrap_or_else(panic_free);
        assert_eq!(empty.shape, vec![0, 3, 48, 320]);
    }
}
