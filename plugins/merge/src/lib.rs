//! `merge`: a stateless streamhost node that gathers any number of inputs into one JSON object
//! keyed by input name (the upstream node ids), in the order the manifest lists them. It is the
//! usual sink of a fan-in DAG. JSON inputs are parsed and embedded (so the result is one document,
//! not JSON inside strings); detections become `[{"label","score","box":[x1,y1,x2,y2]}]`; an image
//! becomes `{"width","height","format"}` and tensors `[{"name","shape"}]`: pixels and tensor data
//! are left out, as they are rarely wanted on the client and would dwarf the rest. Output is built
//! with typed `Serialize` values so f32 scores print as written (0.9, not 0.8999999761581421).

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use node_config::parse_config;

use std::collections::BTreeSet;

use exports::streamhost::node::node::{FrameContext, Guest, Input, NodeError, Signature, Value};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use streamhost::node::types::{Detection, Image, Kind, PixelFormat, Tensor};

struct Merge;

/// `flatten = true` merges each input's object into the top level instead of nesting it under the
/// input's name (how `yolo_ocr` builds `{"detections":[...],"text":[...]}`); `deny_unknown_fields`
/// turns a misspelt manifest into an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    flatten: bool,
}

thread_local! {
    static FLATTEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[derive(Serialize)]
struct DetectionOut<'a> {
    label: &'a str,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

#[derive(Serialize)]
struct ImageOut {
    width: u32,
    height: u32,
    format: &'static str,
}

#[derive(Serialize)]
struct TensorOut<'a> {
    name: &'a str,
    shape: &'a [u32],
}

/// One entry of the output object.
enum Entry<'a> {
    /// Checked to be valid JSON, then copied verbatim.
    Json(Box<RawValue>),
    Detections(Vec<DetectionOut<'a>>),
    Image(ImageOut),
    Tensors(Vec<TensorOut<'a>>),
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Json(raw) => raw.serialize(serializer),
            Entry::Detections(detections) => detections.serialize(serializer),
            Entry::Image(image) => image.serialize(serializer),
            Entry::Tensors(tensors) => tensors.serialize(serializer),
        }
    }
}

/// The output object: a map that keeps input order (serde_json's own map would sort keys).
struct Merged<'a>(Vec<(&'a str, Entry<'a>)>);

impl Serialize for Merged<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, entry) in &self.0 {
            map.serialize_entry(name, entry)?;
        }
        map.end()
    }
}

impl Guest for Merge {
    fn describe() -> Signature {
        Signature {
            takes: vec![Kind::Image, Kind::Tensors, Kind::Detections, Kind::Json],
            gives: vec![Kind::Json],
        }
    }

    fn init(config: String) -> Result<(), NodeError> {
        let config = parse_config::<Config>(&config)
            .map_err(|e| NodeError::InvalidConfig(format!("merge config: {e}")))?;
        FLATTEN.set(config.flatten);
        Ok(())
    }

    fn process(_frame: FrameContext, inputs: Vec<Input>) -> Result<Value, NodeError> {
        if FLATTEN.get() {
            return flatten(&inputs);
        }
        // BTreeSet, not HashSet: RandomState would import wasi:random for its seed.
        let mut seen = BTreeSet::new();
        let mut entries = Vec::with_capacity(inputs.len());
        for input in &inputs {
            if !seen.insert(input.name.as_str()) {
                return Err(NodeError::InvalidInput(format!(
                    "duplicate input name {:?}",
                    input.name
                )));
            }
            entries.push((input.name.as_str(), entry(input)?));
        }
        serde_json::to_string(&Merged(entries))
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

fn entry(input: &Input) -> Result<Entry<'_>, NodeError> {
    Ok(match &input.value {
        Value::Json(text) => Entry::Json(RawValue::from_string(text.clone()).map_err(|e| {
            NodeError::InvalidInput(format!("input {:?} is not valid JSON: {e}", input.name))
        })?),
        Value::Detections(detections) => {
            Entry::Detections(detections.iter().map(detection).collect())
        }
        Value::Image(image) => Entry::Image(image_info(image)),
        Value::Tensors(tensors) => Entry::Tensors(
            tensors
                .iter()
                .map(|t: &Tensor| TensorOut {
                    name: &t.name,
                    shape: &t.shape,
                })
                .collect(),
        ),
    })
}

/// Flattened merge: objects' keys at the top level (later inputs win), other values under a key
/// naming their kind (`detections`, `image`, `tensors`) or, for non-object JSON, the input name.
fn flatten(inputs: &[Input]) -> Result<Value, NodeError> {
    let mut out = serde_json::Map::new();
    for input in inputs {
        let key = match &input.value {
            Value::Json(_) => input.name.as_str(),
            Value::Detections(_) => "detections",
            Value::Image(_) => "image",
            Value::Tensors(_) => "tensors",
        };
        // Through text, not to_value: f32 scores keep their short form (0.9, not 0.899999976).
        let value = serde_json::to_string(&entry(input)?)
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text))
            .map_err(|e| {
                NodeError::Failed(format!("cannot serialise input {:?}: {e}", input.name))
            })?;
        match value {
            serde_json::Value::Object(map) if matches!(input.value, Value::Json(_)) => {
                out.extend(map)
            }
            other => {
                out.insert(key.to_string(), other);
            }
        }
    }
    serde_json::to_string(&out)
        .map(Value::Json)
        .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
}

fn detection(d: &Detection) -> DetectionOut<'_> {
    DetectionOut {
        label: &d.label,
        score: d.score,
        bbox: [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
    }
}

fn image_info(image: &Image) -> ImageOut {
    ImageOut {
        width: image.width,
        height: image.height,
        format: match image.format {
            PixelFormat::Rgb8 => "rgb8",
            PixelFormat::Bgr8 => "bgr8",
            PixelFormat::Rgba8 => "rgba8",
            PixelFormat::Gray8 => "gray8",
        },
    }
}

export!(Merge);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use streamhost::node::types::TensorData;

    fn test_frame() -> FrameContext {
        FrameContext {
            frame_index: 1,
            received_us: 0,
            pipeline_id: "test".into(),
        }
    }
    use streamhost::node::types::Bbox;

    fn input(name: &str, value: Value) -> Input {
        Input {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn merges_in_input_order() {
        let out = Merge::process(
            test_frame(),
            vec![
                input("z_info", Value::Json("{\"b\": 1, \"a\": [1, 2]}".into())),
                input(
                    "detect",
                    Value::Detections(vec![Detection {
                        label: "cat".into(),
                        score: 0.9,
                        bbox: Bbox {
                            x1: 1.0,
                            y1: 2.5,
                            x2: 3.0,
                            y2: 4.0,
                        },
                    }]),
                ),
                input(
                    "decode",
                    Value::Image(Image {
                        width: 2,
                        height: 1,
                        format: PixelFormat::Bgr8,
                        data: vec![0; 6],
                    }),
                ),
                input(
                    "model",
                    Value::Tensors(vec![Tensor {
                        name: "out".into(),
                        shape: vec![1, 3],
                        data: TensorData::F32(vec![0.0; 3]),
                    }]),
                ),
            ],
        )
        .unwrap();
        let Value::Json(text) = out else {
            unreachable!()
        };
        assert_eq!(
            text,
            concat!(
                r#"{"z_info":{"b": 1, "a": [1, 2]},"#,
                r#""detect":[{"label":"cat","score":0.9,"box":[1.0,2.5,3.0,4.0]}],"#,
                r#""decode":{"width":2,"height":1,"format":"bgr8"},"#,
                r#""model":[{"name":"out","shape":[1,3]}]}"#
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["z_info"]["a"][1], 2);
    }

    #[test]
    fn flatten_merges_objects_and_names_other_values_by_kind() {
        FLATTEN.set(true);
        let out = Merge::process(
            test_frame(),
            vec![
                input(
                    "objects",
                    Value::Detections(vec![Detection {
                        label: "text".into(),
                        score: 0.9,
                        bbox: Bbox {
                            x1: 1.0,
                            y1: 2.0,
                            x2: 3.0,
                            y2: 4.0,
                        },
                    }]),
                ),
                input("ocr", Value::Json(r#"{"text":[{"text":"HI"}]}"#.into())),
                input("n", Value::Json("3".into())),
            ],
        );
        FLATTEN.set(false);
        let Ok(Value::Json(text)) = out else {
            unreachable!()
        };
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "detections":[{"label":"text","score":0.9,"box":[1.0,2.0,3.0,4.0]}],
                "text":[{"text":"HI"}],
                "n":3
            })
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Merge::process(test_frame(), vec![input("a", Value::Json("{oops".into()))]),
            Err(NodeError::InvalidInput(_))
        ));
        assert!(matches!(
            Merge::process(
                test_frame(),
                vec![
                    input("a", Value::Json("1".into())),
                    input("a", Value::Json("2".into()))
                ]
            ),
            Err(NodeError::InvalidInput(_))
        ));
        assert_eq!(
            Merge::process(test_frame(), vec![])
                .ok()
                .map(|v| matches!(v, Value::Json(t) if t == "{}")),
            Some(true)
        );
    }
}
