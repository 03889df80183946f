//! The values that flow along a pipeline's edges, in the host's own types.
//!
//! They mirror the WIT `value` variant (see `wit/node.wit`) so that native and
//! Wasm nodes can be mixed freely in one DAG; `wasm::convert` is the only code
//! that translates between the two. Images are shared behind `Arc` because one
//! decoded frame commonly feeds several branches, and cloning megabytes per
//! edge would be waste on the hot path.

use std::sync::Arc;

use serde_json::{json, Value as Json};

/// Memory layout of [`Image::data`]: row-major, tightly packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    Rgb8,
    Bgr8,
    Rgba8,
    Gray8,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 => 4,
            PixelFormat::Gray8 => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PixelFormat::Rgb8 => "rgb8",
            PixelFormat::Bgr8 => "bgr8",
            PixelFormat::Rgba8 => "rgba8",
            PixelFormat::Gray8 => "gray8",
        }
    }
}

/// A decoded image; `data.len() == width * height * format.bytes_per_pixel()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub data: Vec<u8>,
}

impl Image {
    /// Checks the buffer length against the declared geometry.
    pub fn is_consistent(&self) -> bool {
        (self.width as usize)
            .checked_mul(self.height as usize)
            .and_then(|p| p.checked_mul(self.format.bytes_per_pixel()))
            == Some(self.data.len())
    }
}

/// A dense row-major tensor. The values are shared: selecting one tensor of
/// a node's output for the next node (`inputs = ["det_pre.x"]`) clones the
/// handle, not megabytes of floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<u32>,
    pub data: TensorData,
}

/// A tensor's element type: what ONNX calls `float`, `uint8` and `int64`,
/// the three the WIT `tensor-data` variant carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    U8,
    I64,
}

impl DType {
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::U8 => "u8",
            DType::I64 => "i64",
        }
    }
}

/// A tensor's values, shared and read-only: a buffer a node filled, or a
/// buffer that stays where its producer wrote it (an ONNX Runtime output is
/// held, not copied: copying the recogniser's megabytes out took 0.1-0.3 ms
/// a run). Most tensors are f32 (every native node reads and writes f32);
/// u8 and i64 pass between Wasm nodes and models that take or give them.
#[derive(Clone)]
pub enum TensorData {
    F32(Arc<dyn AsRef<[f32]> + Send + Sync>),
    U8(Arc<dyn AsRef<[u8]> + Send + Sync>),
    I64(Arc<dyn AsRef<[i64]> + Send + Sync>),
}

impl TensorData {
    /// f32 values held in `buffer` for as long as any clone of this handle lives.
    pub fn new(buffer: impl AsRef<[f32]> + Send + Sync + 'static) -> Self {
        TensorData::F32(Arc::new(buffer))
    }

    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::U8(_) => DType::U8,
            TensorData::I64(_) => DType::I64,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => (**v).as_ref().len(),
            TensorData::U8(v) => (**v).as_ref().len(),
            TensorData::I64(v) => (**v).as_ref().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values, when they are f32.
    pub fn f32(&self) -> Option<&[f32]> {
        match self {
            TensorData::F32(v) => Some((**v).as_ref()),
            _ => None,
        }
    }

    pub fn u8(&self) -> Option<&[u8]> {
        match self {
            TensorData::U8(v) => Some((**v).as_ref()),
            _ => None,
        }
    }

    pub fn i64(&self) -> Option<&[i64]> {
        match self {
            TensorData::I64(v) => Some((**v).as_ref()),
            _ => None,
        }
    }
}

impl From<Vec<f32>> for TensorData {
    fn from(values: Vec<f32>) -> Self {
        TensorData::new(values)
    }
}

impl From<Vec<u8>> for TensorData {
    fn from(values: Vec<u8>) -> Self {
        TensorData::U8(Arc::new(values))
    }
}

impl From<Vec<i64>> for TensorData {
    fn from(values: Vec<i64>) -> Self {
        TensorData::I64(Arc::new(values))
    }
}

impl PartialEq for TensorData {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TensorData::F32(a), TensorData::F32(b)) => (**a).as_ref() == (**b).as_ref(),
            (TensorData::U8(a), TensorData::U8(b)) => (**a).as_ref() == (**b).as_ref(),
            (TensorData::I64(a), TensorData::I64(b)) => (**a).as_ref() == (**b).as_ref(),
            _ => false,
        }
    }
}

impl std::fmt::Debug for TensorData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        match self {
            TensorData::F32(v) => list.entries((**v).as_ref()),
            TensorData::U8(v) => list.entries((**v).as_ref()),
            TensorData::I64(v) => list.entries((**v).as_ref()),
        };
        list.finish()
    }
}

impl Tensor {
    /// The values when they are f32, or why not: for nodes that compute on floats.
    pub fn f32(&self) -> Result<&[f32], String> {
        self.data.f32().ok_or_else(|| {
            format!(
                "tensor '{}' holds {} values; this node takes f32",
                self.name,
                self.data.dtype().as_str()
            )
        })
    }

    /// Checks the value count against the shape (their product, without overflow).
    pub fn is_consistent(&self) -> bool {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
            == Some(self.data.len())
    }
}

/// An axis-aligned box in frame pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub label: String,
    pub score: f32,
    pub bbox: BBox,
}

/// One value on a DAG edge.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The raw JPEG bytes of the frame (only the pipeline's source produces this).
    Jpeg(bytes::Bytes),
    Image(Arc<Image>),
    Tensors(Arc<Vec<Tensor>>),
    Detections(Vec<Detection>),
    Json(Json),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Jpeg(_) => "jpeg",
            Value::Image(_) => "image",
            Value::Tensors(_) => "tensors",
            Value::Detections(_) => "detections",
            Value::Json(_) => "json",
        }
    }

    /// The value as the `result` object of a frame reply. JSON objects are
    /// passed through; anything else is wrapped under a key naming its kind,
    /// with pixel and tensor data summarised rather than sent.
    pub fn into_result(self) -> Json {
        match self {
            Value::Json(Json::Object(map)) => Json::Object(map),
            Value::Json(other) => json!({ "value": other }),
            Value::Jpeg(bytes) => json!({ "jpeg": { "bytes": bytes.len() } }),
            Value::Image(img) => json!({
                "image": { "width": img.width, "height": img.height, "format": img.format.as_str() }
            }),
            Value::Tensors(ts) => json!({
                "tensors": ts.iter().map(|t| json!({"name": t.name, "shape": t.shape})).collect::<Vec<_>>()
            }),
            Value::Detections(ds) => json!({
                "detections": ds.iter().map(|d| json!({
                    "label": d.label,
                    "score": short(d.score),
                    "box": [short(d.bbox.x1), short(d.bbox.y1), short(d.bbox.x2), short(d.bbox.y2)],
                })).collect::<Vec<_>>()
            }),
        }
    }
}

/// An f32 as the JSON number it prints as (0.9, not 0.8999999761581421).
fn short(x: f32) -> Json {
    x.to_string()
        .parse::<f64>()
        .map(Json::from)
        .unwrap_or(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_consistency_checks_the_buffer_length() {
        let img = Image {
            width: 2,
            height: 3,
            format: PixelFormat::Rgb8,
            data: vec![0; 18],
        };
        assert!(img.is_consistent());
        let short = Image {
            data: vec![0; 17],
            ..img.clone()
        };
        assert!(!short.is_consistent());
        let huge = Image {
            width: u32::MAX,
            height: u32::MAX,
            format: PixelFormat::Rgba8,
            data: vec![],
        };
        assert!(!huge.is_consistent());
    }

    #[test]
    fn tensor_consistency_checks_the_value_count() {
        let t = |shape: &[u32], len: usize| Tensor {
            name: "t".into(),
            shape: shape.to_vec(),
            data: vec![0.0; len].into(),
        };
        assert!(t(&[2, 3], 6).is_consistent());
        assert!(t(&[], 1).is_consistent());
        assert!(t(&[0, 7], 0).is_consistent());
        assert!(!t(&[2, 3], 5).is_consistent());
        assert!(!t(&[u32::MAX, u32::MAX, u32::MAX], 0).is_consistent());
    }

    #[test]
    fn results_summarise_non_json_values() {
        let img = Image {
            width: 4,
            height: 2,
            format: PixelFormat::Gray8,
            data: vec![0; 8],
        };
        assert_eq!(
            Value::Image(Arc::new(img)).into_result(),
            json!({"image":{"width":4,"height":2,"format":"gray8"}})
        );
        assert_eq!(Value::Json(json!(3)).into_result(), json!({"value":3}));
        let det = Detection {
            label: "cat".into(),
            score: 0.9,
            bbox: BBox {
                x1: 1.0,
                y1: 2.0,
                x2: 3.0,
                y2: 4.0,
            },
        };
        assert_eq!(
            Value::Detections(vec![det]).into_result(),
            json!({"detections":[{"label":"cat","score":0.9,"box":[1.0,2.0,3.0,4.0]}]})
        );
    }
}
