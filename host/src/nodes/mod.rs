//! Native (in-process, trusted) node kinds: pixel work and model inference,
//! the parts of a pipeline where speed matters most. Each is a plain function
//! (or a loaded model) over host values; `pipeline::registry` maps a manifest
//! `kind` to one of them.

pub mod argmax;
pub mod jpeg_decode;
mod jpeg_strict;
pub mod onnx;
pub mod par;
pub mod row_feed;
pub mod text_crop;
pub mod to_tensor;
