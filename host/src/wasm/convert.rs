//! Translation between host [`Value`]s and the WIT `value` variant, for both
//! WIT versions the host loads.
//!
//! This is the trust boundary for data coming back from a guest: images must
//! be consistent with their declared geometry and tensors with their shapes,
//! and JSON must parse, before anything downstream sees them.
//!
//! The two versions' generated types are distinct Rust types with the same
//! shape except for tensors (0.1.0 carries f32 only; 0.2.0 a `tensor-data`
//! variant of f32, u8 or s64), so one macro writes both translations and
//! each version supplies only its tensor functions: a u8 or i64 tensor sent
//! to a 0.1.0 node is refused as invalid input, naming the tensor.

use std::sync::Arc;

use crate::value::{BBox, Detection, Image, PixelFormat, Tensor, TensorData, Value};

macro_rules! conversions {
    ($v:ident) => {
        use super::super::bindings::$v::{node_api, wit};
        use super::*;

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

        /// A host value prepared for lowering: the parts that need their own
        /// storage (lists of records, JSON text) live here; pixel and tensor
        /// data are borrowed.
        enum Staged<'a> {
            Image(wit::ImageParam<'a>),
            Tensors(Vec<wit::TensorParam<'a>>),
            Detections(Vec<wit::DetectionParam<'a>>),
            Json(String),
        }

        fn stage<'a>(name: &str, value: &'a Value) -> Result<Staged<'a>, String> {
            Ok(match value {
                Value::Jpeg(_) => {
                    return Err(format!(
                    "input '{name}' is an undecoded JPEG; add a jpeg_decode node before this one"
                ))
                }
                Value::Image(img) => Staged::Image(wit::ImageParam {
                    width: img.width,
                    height: img.height,
                    format: format_to_wit(img.format),
                    data: &img.data,
                }),
                Value::Tensors(ts) => Staged::Tensors(
                    ts.iter()
                        .map(|t| {
                            Ok(wit::TensorParam {
                                name: &t.name,
                                shape: &t.shape,
                                data: tensor_data_param(name, t)?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                ),
                Value::Detections(ds) => Staged::Detections(
                    ds.iter()
                        .map(|d| wit::DetectionParam {
                            label: &d.label,
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
                Value::Json(j) => Staged::Json(j.to_string()),
            })
        }

        /// Calls `f` with `inputs` as guest inputs. Pixel and tensor buffers
        /// are borrowed, not cloned: the only copy is the one into guest memory.
        pub fn with_wit_inputs<R>(
            inputs: &[(String, Value)],
            f: impl FnOnce(&[node_api::Input<'_>]) -> R,
        ) -> Result<R, String> {
            let staged: Vec<Staged<'_>> = inputs
                .iter()
                .map(|(name, value)| stage(name, value))
                .collect::<Result<_, _>>()?;
            let wit_inputs: Vec<node_api::Input<'_>> = inputs
                .iter()
                .zip(&staged)
                .map(|((name, _), s)| node_api::Input {
                    name,
                    value: match s {
                        Staged::Image(img) => wit::ValueParam::Image(img.clone()),
                        Staged::Tensors(ts) => wit::ValueParam::Tensors(ts),
                        Staged::Detections(ds) => wit::ValueParam::Detections(ds),
                        Staged::Json(text) => wit::ValueParam::Json(text),
                    },
                })
                .collect();
            Ok(f(&wit_inputs))
        }

        /// A guest's output as a host value, checked for internal consistency.
        pub fn from_wit_value(value: wit::ValueResult) -> Result<Value, String> {
            Ok(match value {
                wit::ValueResult::Image(img) => {
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
                wit::ValueResult::Tensors(ts) => {
                    let mut out = Vec::with_capacity(ts.len());
                    for t in ts {
                        let tensor = Tensor {
                            name: t.name,
                            shape: t.shape,
                            data: tensor_data_from(t.data),
                        };
                        if !tensor.is_consistent() {
                            return Err(format!(
                                "tensor '{}' of shape {:?} carries {} values",
                                tensor.name,
                                tensor.shape,
                                tensor.data.len()
                            ));
                        }
                        out.push(tensor);
                    }
                    Value::Tensors(Arc::new(out))
                }
                wit::ValueResult::Detections(ds) => Value::Detections(
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
                wit::ValueResult::Json(text) => Value::Json(
                    serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?,
                ),
            })
        }
    };
}

/// `streamhost:node@0.1.0`: f32 tensors only.
pub mod v1 {
    conversions!(v1);

    fn tensor_data_param<'a>(input: &str, t: &'a Tensor) -> Result<&'a [f32], String> {
        t.data.f32().ok_or_else(|| {
            format!(
                "input '{input}': tensor '{}' holds {} values, and this node (streamhost:node@0.1.0) takes only f32",
                t.name,
                t.data.dtype().as_str()
            )
        })
    }

    fn tensor_data_from(data: Vec<f32>) -> TensorData {
        data.into()
    }
}

/// `streamhost:node@0.2.0`: f32, u8 and s64 tensors.
pub mod v2 {
    conversions!(v2);

    fn tensor_data_param<'a>(
        _input: &str,
        t: &'a Tensor,
    ) -> Result<wit::TensorDataParam<'a>, String> {
        Ok(match &t.data {
            TensorData::F32(v) => wit::TensorDataParam::F32((**v).as_ref()),
            TensorData::U8(v) => wit::TensorDataParam::U8((**v).as_ref()),
            TensorData::I64(v) => wit::TensorDataParam::S64((**v).as_ref()),
        })
    }

    fn tensor_data_from(data: wit::TensorDataResult) -> TensorData {
        match data {
            wit::TensorDataResult::F32(v) => v.into(),
            wit::TensorDataResult::U8(v) => v.into(),
            wit::TensorDataResult::S64(v) => v.into(),
        }
    }
}
