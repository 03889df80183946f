//! A frame's inputs, looked up by what a node means rather than by position. The host hands
//! `process` a list of `{name: upstream node id, value}` in manifest order; most nodes want "the
//! image", "the tensor called x", "the `meta` tensor" or "the JSON from upstream", and each
//! lookup here returns a checked value or an `invalid-input` error that says what was missing,
//! so a mis-wired pipeline produces a readable reason instead of a trap.

use serde::de::DeserializeOwned;

use crate::bindings::streamhost::node::types::{Detection, Image, Input, Tensor, Value};
use crate::Error;

/// The inputs of one `process` call, in the order the manifest lists them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    list: Vec<Input>,
}

impl Input {
    /// An input named `name` (the upstream node's id) carrying `value`.
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        Input {
            name: name.into(),
            value,
        }
    }
}

impl Inputs {
    /// Wraps the host's list.
    pub fn new(list: Vec<Input>) -> Self {
        Inputs { list }
    }

    /// Every input, in manifest order.
    pub fn all(&self) -> &[Input] {
        &self.list
    }

    /// The value of the input from upstream node `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.list.iter().find(|i| i.name == name).map(|i| &i.value)
    }

    /// The first image input, checked: `data` has exactly `width * height * bpp` bytes and the
    /// image at least one pixel.
    pub fn image(&self) -> Result<&Image, Error> {
        let image = self
            .list
            .iter()
            .find_map(|i| match &i.value {
                Value::Image(image) => Some(image),
                _ => None,
            })
            .ok_or_else(|| Error::input(format!("no image among the inputs ({})", self.kinds())))?;
        image.check()?;
        Ok(image)
    }

    /// Every tensor of every tensors input, in order.
    pub fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        self.list.iter().flat_map(|i| match &i.value {
            Value::Tensors(tensors) => tensors.as_slice(),
            _ => &[],
        })
    }

    /// The first tensor named `name` among all tensors inputs (a pre-processing node names its
    /// output after the model input, `"x"` or `"images"`; a model's outputs carry its names).
    pub fn tensor(&self, name: &str) -> Result<&Tensor, Error> {
        self.tensors().find(|t| t.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.tensors().map(|t| t.name.as_str()).collect();
            Error::input(format!(
                "no tensor named {name:?} among the inputs (tensors: {names:?})"
            ))
        })
    }

    /// The `meta` tensor a `to_tensor` node emits beside its model input, decoded: how model
    /// coordinates map back to frame pixels.
    pub fn meta(&self) -> Result<Meta, Error> {
        let tensor = self.tensor("meta")?;
        match *tensor.f32s()? {
            [src_w, src_h, scale_x, scale_y, pad_x, pad_y] => {
                if !(src_w >= 1.0 && src_h >= 1.0) {
                    return Err(Error::input(format!(
                        "`meta` frame size {src_w}x{src_h} is not usable"
                    )));
                }
                if !(scale_x > 0.0 && scale_y > 0.0 && pad_x.is_finite() && pad_y.is_finite()) {
                    return Err(Error::input(format!(
                        "`meta` scale ({scale_x}, {scale_y}) / pad ({pad_x}, {pad_y}) is not usable"
                    )));
                }
                Ok(Meta {
                    src_w,
                    src_h,
                    scale_x,
                    scale_y,
                    pad_x,
                    pad_y,
                })
            }
            ref other => Err(Error::input(format!(
                "`meta` must have 6 values ([src_w, src_h, scale_x, scale_y, pad_x, pad_y]), got {}",
                other.len()
            ))),
        }
    }

    /// The first detections input.
    pub fn detections(&self) -> Result<&[Detection], Error> {
        self.list
            .iter()
            .find_map(|i| match &i.value {
                Value::Detections(d) => Some(d.as_slice()),
                _ => None,
            })
            .ok_or_else(|| {
                Error::input(format!("no detections among the inputs ({})", self.kinds()))
            })
    }

    /// The first JSON input, deserialised into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let (name, text) = self
            .list
            .iter()
            .find_map(|i| match &i.value {
                Value::Json(text) => Some((&i.name, text)),
                _ => None,
            })
            .ok_or_else(|| Error::input(format!("no JSON among the inputs ({})", self.kinds())))?;
        serde_json::from_str(text)
            .map_err(|e| Error::input(format!("input {name:?} is not the JSON expected: {e}")))
    }

    /// `name: kind` of each input, for error messages.
    fn kinds(&self) -> String {
        if self.list.is_empty() {
            return "there are none".into();
        }
        let kinds: Vec<String> = self
            .list
            .iter()
            .map(|i| {
                let kind = match i.value {
                    Value::Image(_) => "image",
                    Value::Tensors(_) => "tensors",
                    Value::Detections(_) => "detections",
                    Value::Json(_) => "json",
                };
                format!("{}: {kind}", i.name)
            })
            .collect();
        kinds.join(", ")
    }
}

/// A `to_tensor` node's `meta`: model = frame * scale + pad, per axis, for a frame of
/// `src_w` x `src_h` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta {
    pub src_w: f32,
    pub src_h: f32,
    pub scale_x: f32,
    pub scale_y: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Meta {
    /// A point in model input coordinates mapped back to frame pixels, clamped to the frame.
    pub fn to_frame(&self, x: f32, y: f32) -> (f32, f32) {
        (
            ((x - self.pad_x) / self.scale_x).clamp(0.0, self.src_w),
            ((y - self.pad_y) / self.scale_y).clamp(0.0, self.src_h),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bindings::streamhost::node::types::{Bbox, PixelFormat, TensorData};

    fn tensor(name: &str, shape: &[u32], data: Vec<f32>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        }
    }

    fn sample() -> Inputs {
        Inputs::new(vec![
            Input::new("ocr", Value::Json(r#"{"lines":2}"#.into())),
            Input::new(
                "pre",
                Value::Tensors(vec![
                    tensor("x", &[1, 2], vec![1.0, 2.0]),
                    tensor("meta", &[6], vec![640.0, 480.0, 0.5, 0.5, 0.0, 40.0]),
                ]),
            ),
            Input::new(
                "decode",
                Value::Image(Image {
                    width: 2,
                    height: 1,
                    format: PixelFormat::Gray8,
                    data: vec![10, 20],
                }),
            ),
            Input::new(
                "yolo",
                Value::Detections(vec![Detection {
                    label: "car".into(),
                    score: 0.9,
                    bbox: Bbox {
                        x1: 1.0,
                        y1: 2.0,
                        x2: 3.0,
                        y2: 4.0,
                    },
                }]),
            ),
        ])
    }

    #[test]
    fn lookups_by_meaning() {
        let inputs = sample();
        assert_eq!(inputs.image().map(|i| i.width), Ok(2));
        assert_eq!(
            inputs.tensor("x").and_then(|t| t.f32s()),
            Ok(&[1.0f32, 2.0][..])
        );
        assert_eq!(inputs.detections().map(|d| d[0].label.as_str()), Ok("car"));
        #[derive(serde::Deserialize)]
        struct Ocr {
            lines: u32,
        }
        assert_eq!(inputs.json::<Ocr>().map(|o| o.lines), Ok(2));
        assert!(matches!(inputs.get("decode"), Some(Value::Image(_))));
        assert_eq!(inputs.get("nope"), None);
        assert_eq!(inputs.tensors().count(), 2);
        assert_eq!(inputs.all().len(), 4);
        let meta = inputs.meta().unwrap();
        assert_eq!(meta.to_frame(100.0, 60.0), (200.0, 40.0));
        assert_eq!(meta.to_frame(-5.0, 1000.0), (0.0, 480.0));
    }

    #[test]
    fn a_missing_or_malformed_input_is_an_invalid_input_that_says_what_was_there() {
        let none = Inputs::default();
        assert_eq!(
            none.image(),
            Err(Error::input("no image among the inputs (there are none)"))
        );
        let only_json = Inputs::new(vec![Input::new("a", Value::Json("[]".into()))]);
        assert_eq!(
            only_json.detections(),
            Err(Error::input("no detections among the inputs (a: json)"))
        );
        assert_eq!(
            only_json.tensor("x"),
            Err(Error::input(
                "no tensor named \"x\" among the inputs (tensors: [])"
            ))
        );
        assert!(
            matches!(only_json.json::<std::collections::BTreeMap<String, u8>>(),
            Err(Error::InvalidInput(m)) if m.starts_with("input \"a\" is not the JSON expected"))
        );
        let bad_image = Inputs::new(vec![Input::new(
            "d",
            Value::Image(Image {
                width: 2,
                height: 2,
                format: PixelFormat::Rgb8,
                data: vec![0; 3],
            }),
        )]);
        assert!(bad_image.image().is_err());
        for meta in [
            vec![640.0, 480.0, 0.5],
            vec![0.0, 480.0, 0.5, 0.5, 0.0, 0.0],
            vec![640.0, 480.0, 0.0, 0.5, 0.0, 0.0],
            vec![640.0, 480.0, 0.5, 0.5, f32::NAN, 0.0],
        ] {
            let n = meta.len() as u32;
            let inputs = Inputs::new(vec![Input::new(
                "pre",
                Value::Tensors(vec![tensor("meta", &[n], meta)]),
            )]);
            assert!(matches!(inputs.meta(), Err(Error::InvalidInput(_))));
        }
    }
}
