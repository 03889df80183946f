//! `db-postprocess`: turns a DBNet text detector's probability map into text boxes in frame
//! pixels, reproducing RapidOCR 3.10 / PaddleOCR's `DBPostProcess` (threshold, 2x2 dilation,
//! contours, minimum-area rectangles, `box_score_fast`, pyclipper unclip, `filter_det_res`,
//! `sorted_boxes`) so that a pipeline built from streamhost nodes reads the same boxes, in the
//! same order, as RapidOCR does. OpenCV and pyclipper are not available in a guest, so each
//! step is reimplemented in plain Rust in its own module (`contours`, `geom`, `score`,
//! `unclip`, `postprocess`), with the quirks that change results kept: OpenCV's contour order
//! (it decides the `max_candidates` cut), `fillPoly`'s exact pixel coverage, Clipper's integer
//! offset vertices, numpy's round-half-even. Those modules use no WIT types, so
//! `cargo test -p db-postprocess --target x86_64-unknown-linux-gnu` runs them on the host.
//!
//! Inputs: the detector output (`[1,1,H,W]`, found as the one tensor of rank >= 2 whose leading
//! dimensions are 1) and the pre-processing node's `meta` tensor (`[src_w, src_h, scale_x,
//! scale_y, pad_x, pad_y]`, model = frame * scale + pad), by name or as the one `[6]` tensor.
//! Output: `{"boxes":[{"points":[[x,y] x4],"score"}]}`, points clockwise from the top-left.

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use node_config::parse_config;

mod contours;
mod geom;
mod postprocess;
mod score;
mod unclip;

use std::cell::RefCell;

use exports::streamhost::node::node::{FrameContext, Guest, Input, NodeError, Signature, Value};
use serde::{Deserialize, Serialize};
use streamhost::node::types::{Kind, Tensor, TensorData};

pub use postprocess::{db_postprocess, Meta, Params, TextBox};

struct DbPostprocess;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "d_thresh")]
    thresh: f64,
    #[serde(default = "d_box_thresh")]
    box_thresh: f64,
    #[serde(default = "d_unclip_ratio")]
    unclip_ratio: f64,
    #[serde(default = "d_max_candidates")]
    max_candidates: u32,
    #[serde(default = "d_min_size")]
    min_size: f64,
    #[serde(default = "d_true")]
    use_dilation: bool,
    #[serde(default = "d_score_mode")]
    score_mode: String,
}

fn d_thresh() -> f64 {
    0.3
}
fn d_box_thresh() -> f64 {
    0.5
}
fn d_unclip_ratio() -> f64 {
    1.6
}
fn d_max_candidates() -> u32 {
    1000
}
fn d_min_size() -> f64 {
    3.0
}
fn d_true() -> bool {
    true
}
fn d_score_mode() -> String {
    "fast".into()
}

impl Config {
    fn into_params(self) -> Result<Params, String> {
        if !(0.0..=1.0).contains(&self.thresh) {
            return Err(format!("thresh must be in 0..=1, got {}", self.thresh));
        }
        if !(0.0..=1.0).contains(&self.box_thresh) {
            return Err(format!(
                "box_thresh must be in 0..=1, got {}",
                self.box_thresh
            ));
        }
        if !(self.unclip_ratio.is_finite() && self.unclip_ratio > 0.0) {
            return Err(format!(
                "unclip_ratio must be > 0, got {}",
                self.unclip_ratio
            ));
        }
        if self.max_candidates == 0 {
            return Err("max_candidates must be at least 1".into());
        }
        if !(self.min_size.is_finite() && self.min_size >= 0.0) {
            return Err(format!("min_size must be >= 0, got {}", self.min_size));
        }
        if self.score_mode != "fast" {
            return Err(format!(
                "score_mode {:?} is not supported (only \"fast\", RapidOCR's default)",
                self.score_mode
            ));
        }
        Ok(Params {
            thresh: self.thresh as f32,
            box_thresh: self.box_thresh,
            unclip_ratio: self.unclip_ratio,
            max_candidates: self.max_candidates as usize,
            min_size: self.min_size,
            use_dilation: self.use_dilation,
        })
    }
}

thread_local! {
    static PARAMS: RefCell<Params> = RefCell::new(Params::default());
}

#[derive(Serialize)]
struct BoxOut {
    points: [[i64; 2]; 4],
    score: f64,
}

#[derive(Serialize)]
struct Output {
    boxes: Vec<BoxOut>,
}

impl Guest for DbPostprocess {
    fn describe() -> Signature {
        Signature {
            takes: vec![Kind::Tensors],
            gives: vec![Kind::Json],
        }
    }

    fn init(config: String) -> Result<(), NodeError> {
        let params = parse_config::<Config>(&config)
            .and_then(Config::into_params)
            .map_err(|e| NodeError::InvalidConfig(format!("db-postprocess config: {e}")))?;
        PARAMS.with_borrow_mut(|p| *p = params);
        Ok(())
    }

    fn process(_frame: FrameContext, inputs: Vec<Input>) -> Result<Value, NodeError> {
        let (prob, meta) = find_inputs(&inputs).map_err(NodeError::InvalidInput)?;
        let (width, height) = map_size(prob).map_err(NodeError::InvalidInput)?;
        let values = f32s(prob).map_err(NodeError::InvalidInput)?;
        let boxes =
            PARAMS.with_borrow(|params| db_postprocess(values, width, height, &meta, params));
        let out = Output {
            boxes: boxes
                .into_iter()
                .map(|b| BoxOut {
                    points: b.points,
                    score: (b.score * 10_000.0).round() / 10_000.0,
                })
                .collect(),
        };
        serde_json::to_string(&out)
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

export!(DbPostprocess);

/// A tensor's values, which must be f32.
fn f32s(t: &Tensor) -> Result<&[f32], String> {
    match &t.data {
        TensorData::F32(values) => Ok(values),
        _ => Err(format!("tensor {:?} is not f32", t.name)),
    }
}

/// The probability map and the decoded `meta` among the inputs' tensors.
fn find_inputs(inputs: &[Input]) -> Result<(&Tensor, Meta), String> {
    let mut tensors = Vec::new();
    for input in inputs {
        match &input.value {
            Value::Tensors(ts) => tensors.extend(ts.iter()),
            _ => {
                return Err(format!(
                "input {:?} is not tensors: db-postprocess takes the detector output and `meta`",
                input.name
            ))
            }
        }
    }
    for t in &tensors {
        let expected: u64 = t.shape.iter().map(|&d| u64::from(d)).product();
        let values = f32s(t)?;
        if values.len() as u64 != expected {
            return Err(format!(
                "tensor {:?} of shape {:?} has {} values, expected {expected}",
                t.name,
                t.shape,
                values.len()
            ));
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
    let meta = parse_meta(f32s(meta)?)?;
    let maps: Vec<&Tensor> = tensors
        .iter()
        .copied()
        .filter(|t| t.name != "meta" && t.shape.len() >= 2)
        .collect();
    match maps.as_slice() {
        [prob] => Ok((prob, meta)),
        [] => Err("no probability map ([1,1,H,W] tensor) among the inputs".into()),
        several => Err(format!(
            "several candidate probability maps: {:?}",
            several
                .iter()
                .map(|t| (&t.name, &t.shape))
                .collect::<Vec<_>>()
        )),
    }
}

/// (W, H) of a `[1,1,H,W]` (or `[1,H,W]`, `[H,W]`) map.
fn map_size(t: &Tensor) -> Result<(usize, usize), String> {
    match t.shape.as_slice() {
        [lead @ .., h, w] if lead.iter().all(|&d| d == 1) => Ok((*w as usize, *h as usize)),
        _ => Err(format!(
            "probability map {:?} has shape {:?}; expected [1,1,H,W] (one image)",
            t.name, t.shape
        )),
    }
}

fn parse_meta(data: &[f32]) -> Result<Meta, String> {
    let &[src_w, src_h, scale_x, scale_y, pad_x, pad_y] = data else {
        return Err(format!("`meta` must have 6 values, got {}", data.len()));
    };
    let ok = |v: f32| v.is_finite();
    if !(ok(src_w) && ok(src_h) && src_w >= 1.0 && src_h >= 1.0) {
        return Err(format!("`meta` frame size {src_w}x{src_h} is not usable"));
    }
    if !(ok(scale_x) && ok(scale_y) && scale_x > 0.0 && scale_y > 0.0 && ok(pad_x) && ok(pad_y)) {
        return Err(format!(
            "`meta` scale ({scale_x}, {scale_y}) / pad ({pad_x}, {pad_y}) is not usable"
        ));
    }
    Ok(Meta {
        src_w: f64::from(src_w),
        src_h: f64::from(src_h),
        scale_x: f64::from(scale_x),
        scale_y: f64::from(scale_y),
        pad_x: f64::from(pad_x),
        pad_y: f64::from(pad_y),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn test_frame() -> FrameContext {
        FrameContext {
            frame_index: 1,
            received_us: 0,
            pipeline_id: "test".into(),
        }
    }

    fn tensor(name: &str, shape: &[u32], data: Vec<f32>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        }
    }

    fn inputs(prob: Tensor, meta: Tensor) -> Vec<Input> {
        vec![
            Input {
                name: "det".into(),
                value: Value::Tensors(vec![prob]),
            },
            Input {
                name: "pre".into(),
                value: Value::Tensors(vec![meta]),
            },
        ]
    }

    fn prob_map() -> Tensor {
        let (w, h) = (64usize, 48usize);
        let mut data = vec![0.0; w * h];
        for y in 20..30 {
            for x in 10..50 {
                data[y * w + x] = 0.9;
            }
        }
        tensor("fetch_name_0", &[1, 1, h as u32, w as u32], data)
    }

    fn meta() -> Tensor {
        tensor("meta", &[6], vec![64.0, 48.0, 1.0, 1.0, 0.0, 0.0])
    }

    #[test]
    fn process_end_to_end() {
        DbPostprocess::init("{}".into()).unwrap();
        let Value::Json(text) =
            DbPostprocess::process(test_frame(), inputs(prob_map(), meta())).unwrap()
        else {
            unreachable!()
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["boxes"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["boxes"][0]["points"],
            serde_json::json!([[4, 14], [56, 14], [56, 36], [4, 36]])
        );
        assert_eq!(v["boxes"][0]["score"], 0.7982);
        // A stricter box_thresh drops it.
        DbPostprocess::init("{\"box_thresh\": 0.85}".into()).unwrap();
        let Value::Json(text) =
            DbPostprocess::process(test_frame(), inputs(prob_map(), meta())).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(text, "{\"boxes\":[]}");
        DbPostprocess::init("".into()).unwrap();
    }

    #[test]
    fn config_errors() {
        for bad in [
            "{\"thresh\": 1.5}",
            "{\"box_thresh\": -1}",
            "{\"unclip_ratio\": 0}",
            "{\"max_candidates\": 0}",
            "{\"min_size\": -1}",
            "{\"score_mode\": \"slow\"}",
            "{\"use_dilation\": 1}",
            "{\"threshold\": 0.3}",
            "[]",
        ] {
            assert!(
                matches!(
                    DbPostprocess::init(bad.into()),
                    Err(NodeError::InvalidConfig(_))
                ),
                "{bad}"
            );
        }
        DbPostprocess::init(
            "{\"thresh\": 0.2, \"use_dilation\": false, \"max_candidates\": 5}".into(),
        )
        .unwrap();
        DbPostprocess::init("{}".into()).unwrap();
    }

    #[test]
    fn input_errors() {
        let bad = |inputs: Vec<Input>| {
            matches!(
                DbPostprocess::process(test_frame(), inputs),
                Err(NodeError::InvalidInput(_))
            )
        };
        // No meta.
        assert!(bad(vec![Input {
            name: "det".into(),
            value: Value::Tensors(vec![prob_map()]),
        }]));
        // Meta with a zero scale.
        assert!(bad(inputs(
            prob_map(),
            tensor("meta", &[6], vec![64.0, 48.0, 0.0, 1.0, 0.0, 0.0])
        )));
        // A batch of two maps.
        assert!(bad(inputs(
            tensor("p", &[2, 1, 2, 2], vec![0.0; 8]),
            meta()
        )));
        // Data length disagrees with the shape.
        assert!(bad(inputs(
            tensor("p", &[1, 1, 2, 2], vec![0.0; 3]),
            meta()
        )));
        // Not tensors.
        assert!(bad(vec![Input {
            name: "x".into(),
            value: Value::Json("{}".into()),
        }]));
        // Two maps.
        let mut two = inputs(prob_map(), meta());
        two.push(Input {
            name: "other".into(),
            value: Value::Tensors(vec![prob_map()]),
        });
        assert!(bad(two));
        // An unnamed [6] tensor serves as meta; an empty map gives no boxes.
        let ok = DbPostprocess::process(
            test_frame(),
            inputs(
                tensor("p", &[1, 1, 0, 5], vec![]),
                tensor("", &[6], vec![5.0, 5.0, 1.0, 1.0, 0.0, 0.0]),
            ),
        )
        .unwrap();
        assert!(matches!(ok, Value::Json(t) if t == "{\"boxes\":[]}"));
    }
}
