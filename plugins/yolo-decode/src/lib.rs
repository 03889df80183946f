//! `yolo-decode`: turns a YOLO detector's raw output into `detections` in frame pixels, for the
//! three output layouts users export: YOLOX (raw grid offsets, as ddddocr's `common_det` model
//! and YOLOX's own ONNX export), YOLOv5 (decoded rows with objectness) and YOLOv8/v11 (decoded,
//! transposed, no objectness). The layout is config because the output shape alone cannot tell
//! YOLOX from YOLOv5. Mapping back to the frame goes through the pre-processing node's `meta`
//! (`frame = (model - pad) / scale`), so top-left letterboxes (ddddocr) and centred ones
//! (Ultralytics) both work. NMS follows the reference code of each family: YOLOX/ddddocr's numpy
//! NMS counts pixels inclusively (+1) and runs in frame pixels; the others use plain IoU. The
//! decoding is in `decode` (no WIT types, tested on the host).
//!
//! Config: `layout` ("yolox" | "yolov5" | "yolov8", required), `input_size` ([w, h], required
//! for yolox), `strides` ([8, 16, 32]), `score_threshold` (0.1 for yolox as ddddocr, else 0.25),
//! `nms_iou` (0.45), `class_names` (labels by class index; a one-class model without names is
//! "text", otherwise a missing name is the index), `max_detections` (300),
//! `class_agnostic_nms` (false).

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use node_config::parse_config;

mod decode;

use std::cell::RefCell;

use exports::streamhost::node::node::{FrameContext, Guest, Input, NodeError, Signature, Value};
use serde::Deserialize;
use streamhost::node::types::{Bbox, Detection, Kind, Tensor, TensorData};

pub use decode::{decode, Det, Layout, Meta, Params};

struct YoloDecode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    layout: String,
    input_size: Option<[u32; 2]>,
    #[serde(default = "default_strides")]
    strides: Vec<u32>,
    score_threshold: Option<f32>,
    #[serde(default = "default_nms_iou")]
    nms_iou: f32,
    class_names: Option<Vec<String>>,
    #[serde(default = "default_max_detections")]
    max_detections: u32,
    #[serde(default)]
    class_agnostic_nms: bool,
}

fn default_strides() -> Vec<u32> {
    vec![8, 16, 32]
}
fn default_nms_iou() -> f32 {
    0.45
}
fn default_max_detections() -> u32 {
    300
}

struct State {
    params: Params,
    class_names: Option<Vec<String>>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn build(config: Config) -> Result<State, String> {
    let layout = match config.layout.as_str() {
        "yolox" => Layout::Yolox,
        "yolov5" => Layout::Yolov5,
        "yolov8" => Layout::Yolov8,
        other => {
            return Err(format!(
                "layout must be \"yolox\", \"yolov5\" or \"yolov8\", got {other:?}"
            ))
        }
    };
    if layout == Layout::Yolox {
        match config.input_size {
            None => {
                return Err(
                    "yolox needs input_size [w, h] (the model input, e.g. [416, 416])".into(),
                )
            }
            Some([w, h]) if w == 0 || h == 0 => {
                return Err(format!("input_size [{w}, {h}] is empty"))
            }
            Some(_) => {}
        }
        if config.strides.is_empty() || config.strides.contains(&0) {
            return Err(format!(
                "strides must be positive, got {:?}",
                config.strides
            ));
        }
    }
    let score_threshold = config
        .score_threshold
        .unwrap_or(if layout == Layout::Yolox { 0.1 } else { 0.25 });
    if !(0.0..=1.0).contains(&score_threshold) {
        return Err(format!(
            "score_threshold must be in 0..=1, got {score_threshold}"
        ));
    }
    if !(0.0..=1.0).contains(&config.nms_iou) {
        return Err(format!("nms_iou must be in 0..=1, got {}", config.nms_iou));
    }
    if config.max_detections == 0 {
        return Err("max_detections must be at least 1".into());
    }
    Ok(State {
        params: Params {
            layout,
            input_size: config.input_size,
            strides: config.strides,
            score_threshold,
            nms_iou: config.nms_iou,
            max_detections: config.max_detections as usize,
            class_agnostic: config.class_agnostic_nms,
        },
        class_names: config.class_names,
    })
}

/// The label of class `class` among `classes` classes.
fn label(names: Option<&[String]>, class: usize, classes: usize) -> String {
    match names {
        Some(names) => names
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string()),
        None if classes == 1 => "text".into(),
        None => class.to_string(),
    }
}

impl Guest for YoloDecode {
    fn describe() -> Signature {
        Signature {
            takes: vec![Kind::Tensors],
            gives: vec![Kind::Detections],
        }
    }

    fn init(config: String) -> Result<(), NodeError> {
        let state = parse_config::<Config>(&config)
            .and_then(build)
            .map_err(|e| NodeError::InvalidConfig(format!("yolo-decode config: {e}")))?;
        STATE.with_borrow_mut(|s| *s = Some(state));
        Ok(())
    }

    fn process(_frame: FrameContext, inputs: Vec<Input>) -> Result<Value, NodeError> {
        let (output, meta) = find_inputs(&inputs).map_err(NodeError::InvalidInput)?;
        STATE.with_borrow(|state| {
            let state = state
                .as_ref()
                .ok_or_else(|| NodeError::InvalidConfig("yolo-decode is not initialised".into()))?;
            let values = f32s(output).map_err(NodeError::InvalidInput)?;
            let dets = decode(values, &output.shape, &meta, &state.params)
                .map_err(|e| NodeError::InvalidInput(format!("tensor {:?}: {e}", output.name)))?;
            let head = if state.params.layout == Layout::Yolov8 {
                4
            } else {
                5
            };
            let classes = class_count(&output.shape, state.params.layout).saturating_sub(head);
            Ok(Value::Detections(
                dets.into_iter()
                    .map(|d| Detection {
                        label: label(state.class_names.as_deref(), d.class, classes),
                        // 4 decimals, like the other nodes' scores; NMS used the full value.
                        score: (d.score * 10_000.0).round() / 10_000.0,
                        bbox: Bbox {
                            x1: d.bbox[0],
                            y1: d.bbox[1],
                            x2: d.bbox[2],
                            y2: d.bbox[3],
                        },
                    })
                    .collect(),
            ))
        })
    }
}

export!(YoloDecode);

/// Values per anchor (box + objectness + classes) for an output shape, as `decode` reads it.
fn class_count(shape: &[u32], layout: Layout) -> usize {
    let (a, b) = match shape {
        [1, a, b] | [a, b] => (*a as usize, *b as usize),
        _ => return 0,
    };
    match layout {
        Layout::Yolov8 if b < a && b > 4 => b,
        Layout::Yolov8 => a,
        _ => b,
    }
}

/// A tensor's values, which must be f32.
fn f32s(t: &Tensor) -> Result<&[f32], String> {
    match &t.data {
        TensorData::F32(values) => Ok(values),
        _ => Err(format!("tensor {:?} is not f32", t.name)),
    }
}

/// The model output and the decoded `meta` among the inputs' tensors.
fn find_inputs(inputs: &[Input]) -> Result<(&Tensor, Meta), String> {
    let mut tensors = Vec::new();
    for input in inputs {
        match &input.value {
            Value::Tensors(ts) => tensors.extend(ts.iter()),
            _ => {
                return Err(format!(
                    "input {:?} is not tensors: yolo-decode takes the detector output and `meta`",
                    input.name
                ))
            }
        }
    }
    let meta = tensors
        .iter()
        .find(|t| t.name == "meta")
        .or_else(|| {
            let mut sixes = tensors.iter().filter(|t| t.shape == [6]);
            match (sixes.next(), sixes.next()) {
                (Some(t), None) => Some(t),
                _ => None,
            }
        })
        .ok_or(
            "no `meta` tensor ([src_w, src_h, scale_x, scale_y, pad_x, pad_y]) among the inputs",
        )?;
    let meta_values = f32s(meta)?;
    let &[src_w, src_h, scale_x, scale_y, pad_x, pad_y] = meta_values else {
        return Err(format!(
            "`meta` must have 6 values, got {}",
            meta_values.len()
        ));
    };
    let finite = [src_w, src_h, scale_x, scale_y, pad_x, pad_y]
        .iter()
        .all(|v| v.is_finite());
    if !finite || src_w < 1.0 || src_h < 1.0 || scale_x <= 0.0 || scale_y <= 0.0 {
        return Err(format!("`meta` {meta_values:?} is not usable"));
    }
    let outputs: Vec<&Tensor> = tensors
        .iter()
        .copied()
        .filter(|t| t.name != "meta" && t.shape.len() >= 2)
        .collect();
    match outputs.as_slice() {
        [output] => Ok((
            output,
            Meta {
                src_w,
                src_h,
                scale_x,
                scale_y,
                pad_x,
                pad_y,
            },
        )),
        [] => Err("no detector output tensor among the inputs".into()),
        several => Err(format!(
            "several candidate output tensors: {:?}",
            several
                .iter()
                .map(|t| (&t.name, &t.shape))
                .collect::<Vec<_>>()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn test_frame() -> FrameContext {
        FrameContext {
            frame_index: 1,
            received_us: 0,
            pipeline_id: "test".into(),
        }
    }

    fn tensors(name: &str, ts: Vec<Tensor>) -> Input {
        Input {
            name: name.into(),
            value: Value::Tensors(ts),
        }
    }

    fn t(name: &str, shape: &[u32], data: Vec<f32>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        }
    }

    fn meta() -> Tensor {
        t("meta", &[6], vec![100.0, 100.0, 1.0, 1.0, 0.0, 0.0])
    }

    #[test]
    fn labels() {
        let names = vec!["person".to_string(), "car".to_string()];
        assert_eq!(label(Some(&names), 1, 80), "car");
        assert_eq!(label(Some(&names), 5, 80), "5");
        assert_eq!(label(None, 0, 1), "text");
        assert_eq!(label(None, 3, 80), "3");
    }

    #[test]
    fn process_yolov5() {
        YoloDecode::init("{\"layout\": \"yolov5\", \"class_names\": [\"a\", \"b\"]}".into())
            .unwrap();
        let data = vec![10.0, 10.0, 4.0, 4.0, 0.5, 0.1, 0.9];
        let out = YoloDecode::process(
            test_frame(),
            vec![
                tensors("model", vec![t("output", &[1, 1, 7], data)]),
                tensors("pre", vec![meta()]),
            ],
        )
        .unwrap();
        let Value::Detections(d) = out else {
            panic!("{out:?}")
        };
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label, "b");
        assert_eq!(d[0].score, 0.45);
        assert_eq!(
            (d[0].bbox.x1, d[0].bbox.y1, d[0].bbox.x2, d[0].bbox.y2),
            (8.0, 8.0, 12.0, 12.0)
        );
    }

    #[test]
    fn process_yolox_one_class_is_text() {
        YoloDecode::init(
            "{\"layout\": \"yolox\", \"input_size\": [16, 16], \"strides\": [8, 16]}".into(),
        )
        .unwrap();
        // 4 + 1 anchors x 6 values; anchor 0 scores 0.5.
        let mut data = vec![0.0; 30];
        data[..6].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 1.0, 0.5]);
        let out = YoloDecode::process(
            test_frame(),
            vec![tensors("m", vec![t("output", &[1, 5, 6], data), meta()])],
        )
        .unwrap();
        let Value::Detections(d) = out else {
            panic!("{out:?}")
        };
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label, "text");
        assert_eq!((d[0].bbox.x1, d[0].bbox.x2), (0.0, 8.0));
    }

    #[test]
    fn config_errors() {
        for bad in [
            "{}",
            "{\"layout\": \"yolov7\"}",
            "{\"layout\": \"yolox\"}",
            "{\"layout\": \"yolox\", \"input_size\": [0, 416]}",
            "{\"layout\": \"yolox\", \"input_size\": [416, 416], \"strides\": [0]}",
            "{\"layout\": \"yolov8\", \"score_threshold\": 2}",
            "{\"layout\": \"yolov8\", \"nms_iou\": -0.1}",
            "{\"layout\": \"yolov8\", \"max_detections\": 0}",
            "{\"layout\": \"yolov8\", \"iou\": 0.5}",
        ] {
            assert!(
                matches!(
                    YoloDecode::init(bad.into()),
                    Err(NodeError::InvalidConfig(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn input_errors() {
        YoloDecode::init("{\"layout\": \"yolov8\"}".into()).unwrap();
        let bad = |inputs: Vec<Input>| {
            matches!(
                YoloDecode::process(test_frame(), inputs),
                Err(NodeError::InvalidInput(_))
            )
        };
        let out = || t("output0", &[1, 6, 2], vec![0.0; 12]);
        assert!(bad(vec![tensors("m", vec![out()])])); // no meta
        assert!(bad(vec![tensors("m", vec![meta()])])); // no output
        assert!(bad(vec![tensors("m", vec![out(), out(), meta()])])); // two outputs
        assert!(bad(vec![tensors(
            "m",
            vec![t("o", &[1, 6, 2], vec![0.0; 11]), meta()]
        )]));
        assert!(bad(vec![tensors(
            "m",
            vec![out(), t("meta", &[6], vec![0.0, 100.0, 1.0, 1.0, 0.0, 0.0])]
        )]));
        assert!(bad(vec![Input {
            name: "x".into(),
            value: Value::Json("{}".into())
        }]));
        assert!(!bad(vec![tensors("m", vec![out(), meta()])]));
    }
}
