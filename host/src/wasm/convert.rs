//! Translation between host [`Value`]s and the WIT `value` variant.
//!
//! This is the trust boundary for data coming back from a guest: images must
//! be consistent with their declared geometry and tensors with their shapes,
//! and JSON must parse, before anything downstream sees them.

use std::sync::Arc;

use super::bindings::{node_api, wit};
use crate::value::{BBox, Detection, Image, PixelFormat, Tensor, Value};

fn format_to_wit(f: PixelFormat) -> wit::PixelFormat {
    match f {
        PixelFormat::Rgb8 => wit::PixelFormat::Rgb8,
        PixelFormat::Bgr8 => wit::PixelFormat::Bgr8,
        PixelFormat::Rgba8 => wit::PixelFormat::Rgba8,
        PixelFormat::Gray8 => wit::PixelFormat::Gray8,
    }
}

fn format_from_wit(f: wit::PixelFormat) -> PixelFormat {
    match f {
        wit::PixelFormat::Rgb8 => PixelFormat::Rgb8,
        wit::PixelFormat::Bgr8 => PixelFormat::Bgr8,
        wit::PixelFormat::Rgba8 => PixelFormat::Rgba8,
        wit::PixelFormat::Gray8 => PixelFormat::Gray8,
    }
}

/// A host value as a guest input. The raw JPEG has no WIT form: pipelines
/// decode before handing pixels to a Wasm node (checked at load, too).
pub fn to_wit_input(name: &str, value: &Value) -> Result<node_api::Input, String> {
    let value = match value {
        Value::Jpeg(_) => {
            return Err(format!(
                "input '{name}' is an undecoded JPEG; add a jpeg_decode node before this one"
            ))
        }
        Value::Image(img) => wit::Value::Image(wit::Image {
            width: img.width,
            height: img.height,
            format: format_to_wit(img.format),
            data: img.data.clone(),
        }),
        Value::Tensors(ts) => wit::Value::Tensors(
            ts.iter()
                .map(|t| wit::Tensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    data: t.data.clone(),
                })
                .collect(),
        ),
        Value::Detections(ds) => wit::Value::Detections(
            ds.iter()
                .map(|d| wit::Detection {
                    label: d.label.clone(),
                    score: d.score,
                    bbox: wit::Bbox {
                        x1: d.bbox.x1,
                        y1: d.bbox.y1,
                        x2: d.bbox.x2,
                        y2: d.bbox.y2,
                    },
                })
                .collect(),
        ),
        Value::Json(j) => wit::Value::Json(j.to_string()),
    };
    Ok(node_api::Input {
        name: name.to_string(),
        value,
    })
}

/// A guest's output as a host value, checked for internal consistency.
pub fn from_wit_value(value: wit::Value) -> Result<Value, String> {
    Ok(match value {
        wit::Value::Image(img) => {
            let image = Image {
                width: img.width,
                height: img.height,
                format: format_from_wit(img.format),
                data: img.data,
            };
            if !image.is_consistent() {
                return Err(format!(
                    "image {}x{} {} carries {} bytes",
                    image.width,
                    image.height,
                    image.format.as_str(),
                    image.data.len()
                ));
            }
            Value::Image(Arc::new(image))
        }
        wit::Value::Tensors(ts) => {
            let mut out = Vec::with_capacity(ts.len());
            for t in ts {
                let expected = t
                    .shape
                    .iter()
                    .try_fold(1usize, |acc, d| acc.checked_mul(*d as usize));
                if expected != Some(t.data.len()) {
                    return Err(format!(
                        "tensor '{}' of shape {:?} carries {} values",
                        t.name,
                        t.shape,
                        t.data.len()
                    ));
                }
                out.push(Tensor {
                    name: t.name,
                    shape: t.shape,
                    data: t.data,
                });
            }
            Value::Tensors(Arc::new(out))
        }
        wit::Value::Detections(ds) => Value::Detections(
            ds.into_iter()
                .map(|d| Detection {
                    label: d.label,
                    score: d.score,
                    bbox: BBox {
                        x1: d.bbox.x1,
                        y1: d.bbox.y1,
                        x2: d.bbox.x2,
                        y2: d.bbox.y2,
                    },
                })
                .collect(),
        ),
        wit::Value::Json(text) => {
            Value::Json(serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?)
        }
    })
}
