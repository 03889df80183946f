//! `ctc-decode`: greedy CTC decoding for a PP-OCR recogniser's output, exactly as RapidOCR's
//! `CTCLabelDecode`: per time step take the most probable class, merge repeats, drop the blank,
//! and score a line by the mean probability of the steps it kept.
//!
//! The alphabet is not baked in: the manifest maps `alphabet = "rec.character"`, and the host
//! fills it at load from the recogniser model's own metadata, so a different recogniser brings
//! its own characters. Classes are `[blank] + lines + [" "]` (RapidOCR appends the space).
//! Decoding is one pass over the `[N, T, C]` probabilities with no allocation per step.

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use std::cell::RefCell;

use exports::streamhost::node::node::{Guest, Input, NodeError, Value};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The recogniser's characters, one per line (its `character` metadata).
    alphabet: String,
    /// Append " " as the last class (RapidOCR does).
    #[serde(default = "yes")]
    space: bool,
}

fn yes() -> bool {
    true
}

thread_local! {
    /// Class index -> text; index 0 (blank) is never emitted.
    static CLASSES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Line {
    pub text: String,
    pub score: f32,
}

#[derive(Serialize)]
struct Output {
    lines: Vec<Line>,
}

/// Builds `[blank] + lines + [" "?]` from the metadata text.
pub fn classes(alphabet: &str, space: bool) -> Vec<String> {
    let mut out = vec![String::new()];
    out.extend(
        alphabet
            .split('\n')
            .map(|l| l.trim_end_matches('\r').to_string()),
    );
    if space {
        out.push(" ".to_string());
    }
    out
}

/// Greedy decode of `n` lines of `t` steps over `c` classes (row-major `[n, t, c]`).
pub fn decode(probs: &[f32], n: usize, t: usize, c: usize, classes: &[String]) -> Vec<Line> {
    let mut lines = Vec::with_capacity(n);
    for line in probs.chunks_exact(t * c).take(n) {
        let mut text = String::new();
        let (mut sum, mut kept) = (0f32, 0usize);
        let mut previous = usize::MAX;
        for step in line.chunks_exact(c) {
            let (best, p) =
                step.iter().enumerate().fold(
                    (0, f32::MIN),
                    |(bi, bp), (i, &p)| if p > bp { (i, p) } else { (bi, bp) },
                );
            if best != 0 && best != previous {
                if let Some(ch) = classes.get(best) {
                    text.push_str(ch);
                }
                sum += p;
                kept += 1;
            }
            previous = best;
        }
        let score = if kept == 0 { 0.0 } else { sum / kept as f32 };
        lines.push(Line { text, score });
    }
    lines
}

struct Ctc;

impl Guest for Ctc {
    fn init(config: String) -> Result<(), NodeError> {
        let config: Config = serde_json::from_str(&config)
            .map_err(|e| NodeError::InvalidConfig(format!("ctc-decode config: {e}")))?;
        if config.alphabet.is_empty() {
            return Err(NodeError::InvalidConfig("alphabet is empty".into()));
        }
        CLASSES.with(|c| *c.borrow_mut() = classes(&config.alphabet, config.space));
        Ok(())
    }

    fn process(inputs: Vec<Input>) -> Result<Value, NodeError> {
        let tensor = inputs.iter().find_map(|i| match &i.value {
            Value::Tensors(ts) => ts.iter().find(|t| t.shape.len() == 3),
            _ => None,
        });
        let lines = match tensor {
            None => Vec::new(),
            Some(t) => {
                let [n, steps, c] = [
                    t.shape[0] as usize,
                    t.shape[1] as usize,
                    t.shape[2] as usize,
                ];
                if n.checked_mul(steps).and_then(|v| v.checked_mul(c)) != Some(t.data.len()) {
                    return Err(NodeError::InvalidInput(format!(
                        "tensor of shape {:?} carries {} values",
                        t.shape,
                        t.data.len()
                    )));
                }
                CLASSES.with(|classes| {
                    let classes = classes.borrow();
                    if c != classes.len() {
                        return Err(NodeError::InvalidInput(format!(
                            "recogniser has {c} classes but the alphabet gives {} (blank + characters + space)",
                            classes.len()
                        )));
                    }
                    Ok(decode(&t.data, n, steps, c, &classes))
                })?
            }
        };
        serde_json::to_string(&Output { lines })
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

export!(Ctc);

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(steps: &[usize], c: usize, p: f32) -> Vec<f32> {
        steps
            .iter()
            .flat_map(|&k| {
                (0..c).map(move |i| {
                    if i == k {
                        p
                    } else {
                        (1.0 - p) / (c - 1) as f32
                    }
                })
            })
            .collect()
    }

    #[test]
    fn merges_repeats_drops_blanks_and_scores_kept_steps() {
        let classes = classes("a\nb", true); // ["", "a", "b", " "]
        assert_eq!(classes.len(), 4);
        // a a _ a b _ space b  ->  "aab b"
        let probs = one_hot(&[1, 1, 0, 1, 2, 0, 3, 2], 4, 0.9);
        let lines = decode(&probs, 1, 8, 4, &classes);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "aab b");
        assert!((lines[0].score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn a_line_of_blanks_is_empty_with_score_zero_and_batches_split() {
        let classes = classes("x", false);
        let mut probs = one_hot(&[0, 0, 0], 2, 0.8);
        probs.extend(one_hot(&[1, 0, 1], 2, 0.7));
        let lines = decode(&probs, 2, 3, 2, &classes);
        assert_eq!(
            lines[0],
            Line {
                text: String::new(),
                score: 0.0
            }
        );
        assert_eq!(lines[1].text, "xx");
    }
}
