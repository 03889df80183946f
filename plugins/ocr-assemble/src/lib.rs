//! `ocr-assemble`: the last step of the OCR pipeline, pairing each text box from `db-postprocess`
//! (`{"boxes":[{"points","score"}]}`) with the line `ctc-decode` read from its crop
//! (`{"lines":[{"text","score"}]}`), then dropping what RapidOCR drops: lines scoring under
//! `text_score` (RapidOCR's `filter_by_text_score`, default 0.5) and, with `drop_empty`, lines with
//! no visible text. The pairing is by position, so both inputs must list the same number of
//! entries in the same (reading) order; a mismatch is a wiring error and fails the frame rather
//! than mislabelling boxes. Inputs are recognised by their keys, not their order.
//! Output: `{"text":[{"text","score","box":[[x,y] x4]}]}` in box order, score to 4 decimals; a
//! line the `line_cache` node carried over from an earlier frame adds `"reused": true`.

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use node_config::parse_config;

use std::cell::RefCell;

use exports::streamhost::node::node::{FrameContext, Guest, Input, NodeError, Signature, Value};
use serde::{Deserialize, Serialize};
use streamhost::node::types::Kind;

struct OcrAssemble;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_text_score")]
    text_score: f64,
    #[serde(default = "default_true")]
    drop_empty: bool,
}

fn default_text_score() -> f64 {
    0.5
}
fn default_true() -> bool {
    true
}

/// Filtering settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    pub text_score: f64,
    pub drop_empty: bool,
}

thread_local! {
    static PARAMS: RefCell<Params> = const {
        RefCell::new(Params { text_score: 0.5, drop_empty: true })
    };
}

/// A box's corners, numbers passed through as written (integers stay integers).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TextBox {
    pub points: Vec<[serde_json::Number; 2]>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Line {
    pub text: String,
    pub score: f64,
    /// Set by a `line_cache` node: the line was not read on this frame but
    /// carried over from when its crop last changed. Passed through.
    #[serde(default)]
    pub reused: bool,
}

#[derive(Deserialize)]
struct Boxes {
    boxes: Vec<TextBox>,
}

#[derive(Deserialize)]
struct Lines {
    lines: Vec<Line>,
}

/// One recognised line in the output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Text {
    pub text: String,
    pub score: f64,
    #[serde(rename = "box")]
    pub points: Vec<[serde_json::Number; 2]>,
    /// Only when true (`ocr_stream`): the schema of a pipeline that never
    /// reuses stays exactly as it was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
}

#[derive(Serialize)]
struct Output {
    text: Vec<Text>,
}

/// Pairs `boxes` with `lines` and filters; an error when their lengths differ.
pub fn assemble(
    boxes: Vec<TextBox>,
    lines: Vec<Line>,
    params: &Params,
) -> Result<Vec<Text>, String> {
    if boxes.len() != lines.len() {
        return Err(format!(
            "{} boxes but {} recognised lines: both must come from the same frame, in the same order",
            boxes.len(),
            lines.len()
        ));
    }
    Ok(boxes
        .into_iter()
        .zip(lines)
        .filter(|(_, line)| line.score >= params.text_score)
        .filter(|(_, line)| !(params.drop_empty && line.text.trim().is_empty()))
        .map(|(b, line)| Text {
            text: line.text,
            score: (line.score * 10_000.0).round() / 10_000.0,
            points: b.points,
            reused: line.reused,
        })
        .collect())
}

/// The boxes and lines among `inputs`, told apart by their top-level keys.
fn find_inputs(inputs: &[Input]) -> Result<(Vec<TextBox>, Vec<Line>), String> {
    let (mut boxes, mut lines) = (None, None);
    for input in inputs {
        let Value::Json(text) = &input.value else {
            return Err(format!(
                "input {:?} is not JSON: ocr-assemble takes db-postprocess and ctc-decode output",
                input.name
            ));
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("input {:?} is not valid JSON: {e}", input.name))?;
        let what = |e: serde_json::Error| format!("input {:?}: {e}", input.name);
        if value.get("boxes").is_some() && boxes.is_none() {
            boxes = Some(serde_json::from_value::<Boxes>(value).map_err(what)?.boxes);
        } else if value.get("lines").is_some() && lines.is_none() {
            lines = Some(serde_json::from_value::<Lines>(value).map_err(what)?.lines);
        } else {
            return Err(format!(
                "input {:?} is neither the boxes ({{\"boxes\": ...}}) nor the lines ({{\"lines\": ...}}), or repeats one",
                input.name
            ));
        }
    }
    match (boxes, lines) {
        (Some(b), Some(l)) => Ok((b, l)),
        _ => Err("ocr-assemble needs a {\"boxes\": ...} input and a {\"lines\": ...} input".into()),
    }
}

impl Guest for OcrAssemble {
    fn describe() -> Signature {
        Signature {
            takes: vec![Kind::Json],
            gives: vec![Kind::Json],
        }
    }

    fn init(config: String) -> Result<(), NodeError> {
        let config: Config = parse_config(&config)
            .map_err(|e| NodeError::InvalidConfig(format!("ocr-assemble config: {e}")))?;
        if !(0.0..=1.0).contains(&config.text_score) {
            return Err(NodeError::InvalidConfig(format!(
                "ocr-assemble config: text_score must be in 0..=1, got {}",
                config.text_score
            )));
        }
        PARAMS.with_borrow_mut(|p| {
            *p = Params {
                text_score: config.text_score,
                drop_empty: config.drop_empty,
            }
        });
        Ok(())
    }

    fn process(_frame: FrameContext, inputs: Vec<Input>) -> Result<Value, NodeError> {
        let (boxes, lines) = find_inputs(&inputs).map_err(NodeError::InvalidInput)?;
        let text = PARAMS
            .with_borrow(|p| assemble(boxes, lines, p))
            .map_err(NodeError::InvalidInput)?;
        serde_json::to_string(&Output { text })
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

export!(OcrAssemble);

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

    fn json(name: &str, text: &str) -> Input {
        Input {
            name: name.into(),
            value: Value::Json(text.into()),
        }
    }

    const BOXES: &str = r#"{"boxes":[
        {"points":[[1,2],[30,2],[30,12],[1,12]],"score":0.9},
        {"points":[[1,20],[30,20],[30,32],[1,32]],"score":0.8},
        {"points":[[1,40],[30,40],[30,52],[1,52]],"score":0.7},
        {"points":[[1,60],[30,60],[30,72],[1,72]],"score":0.6}]}"#;
    const LINES: &str = r#"{"lines":[
        {"text":"HELLO","score":0.987654},
        {"text":"noise","score":0.4999},
        {"text":" ","score":0.99},
        {"text":"edge","score":0.5}]}"#;

    #[test]
    fn pairs_and_filters() {
        OcrAssemble::init("{}".into()).unwrap();
        // Lines first: inputs are found by their keys.
        let out = OcrAssemble::process(test_frame(), vec![json("rec", LINES), json("det", BOXES)])
            .unwrap();
        let Value::Json(text) = out else {
            panic!("{out:?}")
        };
        assert_eq!(
            text,
            concat!(
                r#"{"text":[{"text":"HELLO","score":0.9877,"box":[[1,2],[30,2],[30,12],[1,12]]},"#,
                r#"{"text":"edge","score":0.5,"box":[[1,60],[30,60],[30,72],[1,72]]}]}"#
            )
        );
        OcrAssemble::init("{\"text_score\": 0, \"drop_empty\": false}".into()).unwrap();
        let Value::Json(text) =
            OcrAssemble::process(test_frame(), vec![json("det", BOXES), json("rec", LINES)])
                .unwrap()
        else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["text"].as_array().unwrap().len(), 4);
        assert_eq!(v["text"][2]["text"], " ");
        OcrAssemble::init("{}".into()).unwrap();
    }

    #[test]
    fn a_reused_line_says_so_and_others_do_not() {
        let params = Params {
            text_score: 0.5,
            drop_empty: true,
        };
        let boxes: Boxes = serde_json::from_str(BOXES).unwrap();
        let mut lines: Lines = serde_json::from_str(LINES).unwrap();
        lines.lines[0].reused = true;
        let out = assemble(boxes.boxes, lines.lines, &params).unwrap();
        let v = serde_json::to_value(Output { text: out }).unwrap();
        assert_eq!(v["text"][0]["reused"], true);
        assert!(v["text"][1].get("reused").is_none(), "{v}");
        let read: Lines =
            serde_json::from_str(r#"{"lines":[{"text":"a","score":0.9,"reused":true}]}"#).unwrap();
        assert!(read.lines[0].reused);
    }

    #[test]
    fn empty_frame() {
        let params = Params {
            text_score: 0.5,
            drop_empty: true,
        };
        assert_eq!(assemble(vec![], vec![], &params), Ok(vec![]));
    }

    #[test]
    fn errors() {
        for bad in ["{\"text_score\": 2}", "{\"score\": 0.5}", "[]"] {
            assert!(
                matches!(
                    OcrAssemble::init(bad.into()),
                    Err(NodeError::InvalidConfig(_))
                ),
                "{bad}"
            );
        }
        let bad = |inputs: Vec<Input>| {
            matches!(
                OcrAssemble::process(test_frame(), inputs),
                Err(NodeError::InvalidInput(_))
            )
        };
        // Lengths differ.
        assert!(bad(vec![
            json("det", BOXES),
            json("rec", r#"{"lines":[]}"#)
        ]));
        // Missing one, repeated one, unknown one, malformed ones.
        assert!(bad(vec![json("det", BOXES)]));
        assert!(bad(vec![json("det", BOXES), json("det2", BOXES)]));
        assert!(bad(vec![json("det", BOXES), json("x", "{\"other\": 1}")]));
        assert!(bad(vec![
            json("det", BOXES),
            json("rec", "{\"lines\": [{\"text\": 3}]}")
        ]));
        assert!(bad(vec![json("det", "{oops"), json("rec", LINES)]));
        assert!(bad(vec![Input {
            name: "img".into(),
            value: Value::Detections(vec![])
        }]));
    }
}
