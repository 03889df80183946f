//! `ocr-assemble`: pairs the detector's boxes with the recogniser's lines (same order, one to one)
//! into the `ocr` pipeline's result, `{"text":[{"text","score","box":[[x,y],...]}]}`, dropping
//! lines below `text_score` (RapidOCR's default 0.5) and empty ones, as RapidOCR does. Kept as a
//! node of its own so a pipeline author can change the result's shape without touching decoding.

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use std::cell::Cell;

use exports::streamhost::node::node::{Guest, Input, NodeError, Value};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_text_score")]
    text_score: f32,
    #[serde(default = "yes")]
    drop_empty: bool,
}

fn default_text_score() -> f32 {
    0.5
}
fn yes() -> bool {
    true
}

thread_local! {
    static TEXT_SCORE: Cell<f32> = const { Cell::new(0.5) };
    static DROP_EMPTY: Cell<bool> = const { Cell::new(true) };
}

#[derive(Deserialize)]
struct Boxes {
    boxes: Vec<BoxIn>,
}

#[derive(Deserialize)]
struct BoxIn {
    points: Vec<[f32; 2]>,
}

#[derive(Deserialize)]
struct Lines {
    lines: Vec<LineIn>,
}

#[derive(Deserialize)]
struct LineIn {
    text: String,
    score: f32,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct TextOut {
    pub text: String,
    pub score: f32,
    #[serde(rename = "box")]
    pub points: Vec<[f32; 2]>,
}

#[derive(Serialize)]
struct Output {
    text: Vec<TextOut>,
}

/// Pairs boxes and lines, filtering by score and emptiness.
pub fn assemble(
    boxes: Vec<Vec<[f32; 2]>>,
    lines: Vec<(String, f32)>,
    text_score: f32,
    drop_empty: bool,
) -> Vec<TextOut> {
    boxes
        .into_iter()
        .zip(lines)
        .filter(|(_, (text, score))| {
            *score >= text_score && !(drop_empty && text.trim().is_empty())
        })
        .map(|(points, (text, score))| TextOut {
            text,
            score: (score * 10_000.0).round() / 10_000.0,
            points,
        })
        .collect()
}

struct Assemble;

/// The first JSON input whose top-level object has `key`.
fn json_input(inputs: &[Input], key: &str) -> Option<serde_json::Value> {
    inputs.iter().find_map(|i| match &i.value {
        Value::Json(text) => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .filter(|v| v.get(key).is_some()),
        _ => None,
    })
}

impl Guest for Assemble {
    fn init(config: String) -> Result<(), NodeError> {
        let text = if config.trim().is_empty() {
            "{}"
        } else {
            &config
        };
        let config: Config = serde_json::from_str(text)
            .map_err(|e| NodeError::InvalidConfig(format!("ocr-assemble config: {e}")))?;
        TEXT_SCORE.set(config.text_score);
        DROP_EMPTY.set(config.drop_empty);
        Ok(())
    }

    fn process(inputs: Vec<Input>) -> Result<Value, NodeError> {
        let boxes = json_input(&inputs, "boxes")
            .ok_or_else(|| NodeError::InvalidInput("no {\"boxes\":[...]} input".into()))?;
        let lines = json_input(&inputs, "lines")
            .ok_or_else(|| NodeError::InvalidInput("no {\"lines\":[...]} input".into()))?;
        let boxes: Boxes = serde_json::from_value(boxes)
            .map_err(|e| NodeError::InvalidInput(format!("boxes: {e}")))?;
        let lines: Lines = serde_json::from_value(lines)
            .map_err(|e| NodeError::InvalidInput(format!("lines: {e}")))?;
        if boxes.boxes.len() != lines.lines.len() {
            return Err(NodeError::InvalidInput(format!(
                "{} boxes but {} recognised lines; they must pair one to one",
                boxes.boxes.len(),
                lines.lines.len()
            )));
        }
        let text = assemble(
            boxes.boxes.into_iter().map(|b| b.points).collect(),
            lines.lines.into_iter().map(|l| (l.text, l.score)).collect(),
            TEXT_SCORE.get(),
            DROP_EMPTY.get(),
        );
        serde_json::to_string(&Output { text })
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

export!(Assemble);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_in_order_and_filters_low_scores_and_empty_lines() {
        let b = |x: f32| vec![[x, 0.0], [x + 1.0, 0.0], [x + 1.0, 1.0], [x, 1.0]];
        let out = assemble(
            vec![b(0.0), b(10.0), b(20.0), b(30.0)],
            vec![
                ("HELLO".into(), 0.98765),
                ("low".into(), 0.3),
                ("  ".into(), 0.9),
                ("ABC".into(), 0.5),
            ],
            0.5,
            true,
        );
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].text.as_str(), out[0].score), ("HELLO", 0.9877));
        assert_eq!(out[0].points, b(0.0));
        assert_eq!(out[1].text, "ABC");
        assert_eq!(out[1].points, b(30.0));
    }
}
