//! `ctc-decode`: greedy CTC decoding of a PP-OCR text recognizer's output, as RapidOCR 3.10's
//! `CTCLabelDecode` does it, so that a streamhost pipeline reads the same strings with the same
//! confidences. Input: one tensor `[N, T, C]` of per-step class probabilities (the model ends in
//! a softmax). Per line: argmax per step (first maximum on ties, like numpy), merge repeats,
//! drop the blank (class 0); the text is the kept classes' characters, the score the mean of
//! their probabilities (each rounded to 5 decimals, the mean too; 0 when nothing is kept).
//!
//! The alphabet is config, not input, because it is a property of the model: the host reads the
//! ONNX metadata key `character` and passes its lines (joined by "\n") as `alphabet`. Classes are
//! blank, then those lines, then " " when `space` is on (RapidOCR appends it). A model whose `C`
//! disagrees with that count is refused rather than decoded into garbage. The argmax scan is
//! the hot loop (N x T x C is millions of floats for a big alphabet): it runs over fixed-width
//! lanes so it vectorises. `decode` is plain Rust and tested on the host.
//!
//! The shipped pipelines put the host's native `argmax` node in front, so the decoder gets the
//! reduced form instead: tensors `index` and `score` (`[N, T]`, each step's best class and its
//! probability) and `classes` (`[1]`, C). Copying the full `[N, T, C]` into this instance cost
//! more than the decoding; both forms go through the same `decode_line`. A ragged batch (the
//! recogniser run once per crop at its own width: several `[1, T_i, C]` tensors of one name) is
//! decoded part by part, its lines in order; the argmax node joins one the same way.

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use node_config::parse_config;

use std::cell::RefCell;

use exports::streamhost::node::node::{FrameContext, Guest, Input, NodeError, Signature, Value};
use serde::{Deserialize, Serialize};
use streamhost::node::types::{Kind, Tensor, TensorData};

struct CtcDecode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The recognizer's characters, one per line.
    alphabet: String,
    /// Append " " as the last class.
    #[serde(default = "default_space")]
    space: bool,
}

fn default_space() -> bool {
    true
}

thread_local! {
    /// Class index -> text (index 0, the blank, is ""); None before a successful `init`.
    static CLASSES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// One decoded line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    pub text: String,
    pub score: f64,
}

#[derive(Serialize)]
struct Output {
    lines: Vec<Line>,
}

/// Python's `str.splitlines()`: RapidOCR splits the metadata string with it. Line breaks are
/// \n, \r, \r\n, \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and \u2029; a final break ends the last line
/// rather than starting an empty one.
pub fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            lines.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The class table: blank (""), the alphabet's lines, then " " when `space`.
pub fn classes(alphabet: &str, space: bool) -> Vec<String> {
    let mut classes = Vec::with_capacity(alphabet.len() / 2 + 2);
    classes.push(String::new());
    classes.extend(split_lines(alphabet).into_iter().map(str::to_owned));
    if space {
        classes.push(" ".to_owned());
    }
    classes
}

/// numpy's `round(x, 5)`: round half to even on the scaled value.
fn round5(x: f64) -> f64 {
    (x * 1e5).round_ties_even() / 1e5
}

/// Index and value of the first maximum of `row` (numpy's argmax for NaN-free input; NaN
/// never wins here). `row` must not be empty.
pub fn argmax(row: &[f32]) -> (usize, f32) {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    let mut max = lanes
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    for &v in tail {
        if v > max {
            max = v;
        }
    }
    let index = row.iter().position(|&v| v == max).unwrap_or(0);
    (index, max)
}

/// Greedy CTC decoding of `probs` (`n * t * classes.len()` values, row-major `[N, T, C]`).
/// Callers check the length; a short buffer decodes fewer lines.
pub fn decode(probs: &[f32], n: usize, t: usize, classes: &[String]) -> Vec<Line> {
    let c = classes.len();
    if c == 0 || t == 0 {
        return (0..n)
            .map(|_| Line {
                text: String::new(),
                score: 0.0,
            })
            .collect();
    }
    probs
        .chunks_exact(t * c)
        .take(n)
        .map(|line| decode_line(line.chunks_exact(c).map(argmax), classes))
        .collect()
}

/// Greedy CTC over one line's steps, each already reduced to (best class, its probability):
/// merge repeats, drop the blank, average the kept probabilities.
pub fn decode_line(steps: impl Iterator<Item = (usize, f32)>, classes: &[String]) -> Line {
    let mut text = String::new();
    let (mut sum, mut kept) = (0f64, 0usize);
    let mut previous = None;
    for (index, prob) in steps {
        if index != 0 && previous != Some(index) {
            if let Some(s) = classes.get(index) {
                text.push_str(s);
            }
            sum += round5(f64::from(prob));
            kept += 1;
        }
        previous = Some(index);
    }
    let score = if kept == 0 {
        0.0
    } else {
        round5(sum / kept as f64)
    };
    Line { text, score }
}

/// Decodes the reduced form (`index`, `score`: `[N, T]`); an index that is not a class of the
/// alphabet is an error, not a silently dropped character.
pub fn decode_reduced(
    index: &[f32],
    score: &[f32],
    n: usize,
    t: usize,
    classes: &[String],
) -> Result<Vec<Line>, String> {
    if t == 0 {
        // No steps: every line is empty, as in `decode`.
        return Ok(decode(&[], n, 0, classes));
    }
    if let Some(i) = index
        .iter()
        .find(|&&i| !(i >= 0.0 && i.fract() == 0.0 && (i as usize) < classes.len()))
    {
        return Err(format!(
            "index {i} is not a class of the alphabet (0..{})",
            classes.len()
        ));
    }
    Ok(index
        .chunks_exact(t)
        .zip(score.chunks_exact(t))
        .map(|(idx, sc)| {
            decode_line(
                idx.iter().map(|&i| i as usize).zip(sc.iter().copied()),
                classes,
            )
        })
        .collect())
}

/// The class-count check shared by both input forms.
fn check_classes(c: usize, classes: &[String]) -> Result<(), NodeError> {
    if c == classes.len() {
        return Ok(());
    }
    Err(NodeError::InvalidInput(format!(
        "the model has {c} classes but the alphabet gives {} (blank + {} characters{}); \
         is `alphabet` this model's `character` metadata?",
        classes.len(),
        classes.len() - 1,
        if classes.last().is_some_and(|s| s == " ") {
            " incl. the appended space"
        } else {
            ""
        }
    )))
}

/// A tensor's values, which must be f32 (probabilities, or argmax's indices and scores).
fn f32s(t: &Tensor) -> Result<&[f32], NodeError> {
    match &t.data {
        TensorData::F32(values) => Ok(values),
        _ => Err(NodeError::InvalidInput(format!(
            "tensor {:?} is not f32: ctc-decode takes probabilities",
            t.name
        ))),
    }
}

/// The argmax node's output: `index` and `score` of one shape `[N, T]`, `classes` `[1]`.
fn process_reduced(tensors: &[&Tensor], classes: &[String]) -> Result<Vec<Line>, NodeError> {
    let find = |name: &str| {
        tensors.iter().find(|t| t.name == name).ok_or_else(|| {
            NodeError::InvalidInput(format!(
                "the reduced form needs tensors index, score and classes; {name} is missing"
            ))
        })
    };
    let (index, score, count) = (find("index")?, find("score")?, find("classes")?);
    let (index_values, score_values, count) = (f32s(index)?, f32s(score)?, f32s(count)?);
    let &[c] = count else {
        return Err(NodeError::InvalidInput(
            "classes must hold one value, the model's class count".into(),
        ));
    };
    let &[n, t] = index.shape.as_slice() else {
        return Err(NodeError::InvalidInput(format!(
            "index has shape {:?}; expected [N, T]",
            index.shape
        )));
    };
    let (n, t) = (n as usize, t as usize);
    if score.shape != index.shape
        || index_values.len() as u64 != (n as u64) * (t as u64)
        || score_values.len() != index_values.len()
    {
        return Err(NodeError::InvalidInput(format!(
            "index {:?} ({} values) and score {:?} ({} values) do not agree",
            index.shape,
            index_values.len(),
            score.shape,
            score_values.len()
        )));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    check_classes(c as usize, classes)?;
    decode_reduced(index_values, score_values, n, t, classes).map_err(NodeError::InvalidInput)
}

/// The recogniser's full output: one tensor `[N, T, C]` of per-step class probabilities.
fn process_full(t: &Tensor, classes: &[String]) -> Result<Vec<Line>, NodeError> {
    let &[n, steps, c] = t.shape.as_slice() else {
        return Err(NodeError::InvalidInput(format!(
            "tensor {:?} has shape {:?}; expected [N, T, C]",
            t.name, t.shape
        )));
    };
    let (n, steps, c) = (n as usize, steps as usize, c as usize);
    let values = f32s(t)?;
    if (n as u64) * (steps as u64) * (c as u64) != values.len() as u64 {
        return Err(NodeError::InvalidInput(format!(
            "tensor {:?} of shape {:?} has {} values",
            t.name,
            t.shape,
            values.len()
        )));
    }
    if n > 0 {
        check_classes(c, classes)?;
    }
    Ok(decode(values, n, steps, classes))
}

impl Guest for CtcDecode {
    fn describe() -> Signature {
        Signature {
            takes: vec![Kind::Tensors],
            gives: vec![Kind::Json],
        }
    }

    fn init(config: String) -> Result<(), NodeError> {
        let config: Config = parse_config(&config)
            .map_err(|e| NodeError::InvalidConfig(format!("ctc-decode config: {e}")))?;
        if config.alphabet.is_empty() {
            return Err(NodeError::InvalidConfig(
                "ctc-decode config: alphabet is empty (pass the model's `character` metadata)"
                    .into(),
            ));
        }
        let table = classes(&config.alphabet, config.space);
        CLASSES.with_borrow_mut(|c| *c = Some(table));
        Ok(())
    }

    fn process(_frame: FrameContext, inputs: Vec<Input>) -> Result<Value, NodeError> {
        let mut tensors = Vec::new();
        for input in &inputs {
            match &input.value {
                Value::Tensors(ts) => tensors.extend(ts.iter()),
                _ => {
                    return Err(NodeError::InvalidInput(format!(
                        "input {:?} is not tensors: ctc-decode takes the recognizer's output",
                        input.name
                    )))
                }
            }
        }
        let reduced = tensors.iter().any(|t| t.name == "index");
        let lines = CLASSES.with_borrow(|classes| {
            let classes = classes.as_ref().ok_or_else(|| {
                NodeError::InvalidConfig("ctc-decode has no alphabet (init failed?)".into())
            })?;
            match tensors.as_slice() {
                [] => Ok(Vec::new()),
                _ if reduced => process_reduced(&tensors, classes),
                [t] => process_full(t, classes),
                [first, ..] if tensors.iter().all(|t| t.name == first.name) => {
                    // A ragged batch (the recogniser run once per crop): its parts' lines in order.
                    let mut lines = Vec::new();
                    for t in &tensors {
                        lines.extend(process_full(t, classes)?);
                    }
                    Ok(lines)
                }
                several => Err(NodeError::InvalidInput(format!(
                    "ctc-decode takes one tensor (or a ragged batch of one name), got {} named {:?}",
                    several.len(),
                    several.iter().map(|t| t.name.as_str()).collect::<Vec<_>>()
                ))),
            }
        })?;
        serde_json::to_string(&Output { lines })
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

export!(CtcDecode);

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

    /// One-hot-ish rows: each step puts `p` on its class and spreads the rest evenly.
    fn steps(classes: usize, picks: &[(usize, f32)]) -> Vec<f32> {
        let mut out = Vec::new();
        for &(k, p) in picks {
            let rest = (1.0 - p) / (classes - 1) as f32;
            out.extend((0..classes).map(|i| if i == k { p } else { rest }));
        }
        out
    }

    fn table() -> Vec<String> {
        classes("a\nb\nc", true) // blank, a, b, c, " "
    }

    #[test]
    fn python_splitlines() {
        assert_eq!(split_lines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(split_lines("a\n"), vec!["a"]);
        assert_eq!(split_lines("a\n\nb"), vec!["a", "", "b"]);
        assert_eq!(split_lines("x\u{2028}y\x0cz"), vec!["x", "y", "z"]);
        assert_eq!(split_lines("日本\n語"), vec!["日本", "語"]);
        assert!(split_lines("").is_empty());
        assert_eq!(table(), vec!["", "a", "b", "c", " "]);
        assert_eq!(classes("a", false), vec!["", "a"]);
    }

    #[test]
    fn argmax_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), (1, 0.7));
        assert_eq!(argmax(&[0.5, 0.5]), (0, 0.5));
        let mut long = vec![0.0f32; 37];
        long[20] = 0.9;
        long[36] = 0.9;
        assert_eq!(argmax(&long), (20, 0.9));
        assert_eq!(argmax(&[f32::NAN, 0.2]), (1, 0.2));
    }

    #[test]
    fn greedy_decoding() {
        let t = table();
        // a a _ a b b " " c _  ->  "aab c"
        let picks = [
            (1, 0.9),
            (1, 0.8),
            (0, 0.99),
            (1, 0.7),
            (2, 0.6),
            (2, 0.95),
            (4, 0.5),
            (3, 0.88),
            (0, 0.9),
        ];
        let probs = steps(5, &picks);
        let lines = decode(&probs, 1, picks.len(), &t);
        assert_eq!(lines[0].text, "aab c");
        // Kept steps: 0.9, 0.7, 0.6, 0.5, 0.88 (the first of each run).
        let expected = (0.9 + 0.7 + 0.6 + 0.5 + 0.88) / 5.0;
        assert!(
            (lines[0].score - expected).abs() < 1e-5,
            "{}",
            lines[0].score
        );
        // Two lines in batch order; a line of blanks is empty with score 0.
        let mut two = steps(5, &[(2, 0.9), (2, 0.9)]);
        two.extend(steps(5, &[(0, 0.9), (0, 0.9)]));
        let lines = decode(&two, 2, 2, &t);
        assert_eq!(
            lines[0],
            Line {
                text: "b".into(),
                score: 0.9
            }
        );
        assert_eq!(
            lines[1],
            Line {
                text: String::new(),
                score: 0.0
            }
        );
    }

    #[test]
    fn scores_round_like_rapidocr() {
        assert_eq!(round5(0.123456), 0.12346);
        assert_eq!(round5(0.5), 0.5);
        let t = table();
        let probs = steps(5, &[(1, 0.987654), (2, 0.912345)]);
        let line = &decode(&probs, 1, 2, &t)[0];
        assert_eq!(
            line.score,
            round5((round5(0.987654f32 as f64) + round5(0.912345f32 as f64)) / 2.0)
        );
    }

    fn tensor(shape: &[u32], data: Vec<f32>) -> Input {
        Input {
            name: "rec".into(),
            value: Value::Tensors(vec![Tensor {
                name: "out".into(),
                shape: shape.to_vec(),
                data: TensorData::F32(data),
            }]),
        }
    }

    fn reduced(index: Vec<f32>, score: Vec<f32>, shape: &[u32], classes: f32) -> Input {
        let t = |name: &str, shape: &[u32], data: Vec<f32>| Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        };
        Input {
            name: "rec_max".into(),
            value: Value::Tensors(vec![
                t("index", shape, index),
                t("score", shape, score),
                t("classes", &[1], vec![classes]),
            ]),
        }
    }

    #[test]
    fn reduced_form_decodes_like_the_full_one() {
        let t = table();
        let picks = [(1, 0.9), (1, 0.8), (0, 0.99), (1, 0.7), (4, 0.5), (3, 0.88)];
        let full = decode(&steps(5, &picks), 1, picks.len(), &t);
        let index: Vec<f32> = picks.iter().map(|&(k, _)| k as f32).collect();
        let score: Vec<f32> = picks.iter().map(|&(_, p)| p).collect();
        assert_eq!(
            decode_reduced(&index, &score, 1, picks.len(), &t).unwrap(),
            full
        );
        assert_eq!(full[0].text, "aa c");
        // No steps: N empty lines, as the full form gives (ocr-assemble pairs them with boxes).
        assert_eq!(
            decode_reduced(&[], &[], 2, 0, &t).unwrap(),
            decode(&[], 2, 0, &t)
        );
        assert_eq!(decode_reduced(&[], &[], 2, 0, &t).unwrap().len(), 2);
        // An index outside the alphabet, negative or fractional, is refused.
        for bad in [5.0, -1.0, 1.5, f32::NAN] {
            assert!(decode_reduced(&[bad], &[0.9], 1, 1, &t).is_err(), "{bad}");
        }

        CtcDecode::init("{\"alphabet\": \"a\\nb\\nc\"}".into()).unwrap();
        let out = CtcDecode::process(
            test_frame(),
            vec![reduced(vec![3.0, 4.0], vec![1.0, 1.0], &[1, 2], 5.0)],
        )
        .unwrap();
        assert!(
            matches!(out, Value::Json(t) if t == "{\"lines\":[{\"text\":\"c \",\"score\":1.0}]}")
        );
        let none =
            CtcDecode::process(test_frame(), vec![reduced(vec![], vec![], &[0, 40], 5.0)]).unwrap();
        assert!(matches!(none, Value::Json(t) if t == "{\"lines\":[]}"));
        // The model's class count is still checked against the alphabet.
        match CtcDecode::process(
            test_frame(),
            vec![reduced(vec![1.0], vec![0.9], &[1, 1], 6.0)],
        ) {
            Err(NodeError::InvalidInput(m)) => assert!(m.contains('6') && m.contains('5'), "{m}"),
            other => panic!("{other:?}"),
        }
        // Disagreeing shapes, a missing score.
        assert!(CtcDecode::process(
            test_frame(),
            vec![reduced(vec![1.0], vec![0.9, 0.9], &[1, 1], 5.0)]
        )
        .is_err());
        let missing = Input {
            name: "x".into(),
            value: Value::Tensors(vec![Tensor {
                name: "index".into(),
                shape: vec![1, 1],
                data: TensorData::F32(vec![1.0]),
            }]),
        };
        assert!(matches!(
            CtcDecode::process(test_frame(), vec![missing]),
            Err(NodeError::InvalidInput(_))
        ));
    }

    #[test]
    fn process_and_errors() {
        assert!(matches!(
            CtcDecode::init("{}".into()),
            Err(NodeError::InvalidConfig(_))
        ));
        assert!(matches!(
            CtcDecode::init("{\"alphabet\": \"\"}".into()),
            Err(NodeError::InvalidConfig(_))
        ));
        assert!(matches!(
            CtcDecode::init("{\"alphabet\": \"a\", \"spaces\": true}".into()),
            Err(NodeError::InvalidConfig(_))
        ));
        CtcDecode::init("{\"alphabet\": \"a\\nb\\nc\"}".into()).unwrap();
        let out = CtcDecode::process(
            test_frame(),
            vec![tensor(&[1, 2, 5], steps(5, &[(3, 1.0), (4, 1.0)]))],
        )
        .unwrap();
        assert!(
            matches!(out, Value::Json(t) if t == "{\"lines\":[{\"text\":\"c \",\"score\":1.0}]}")
        );
        // No tensor, or N = 0: no lines.
        let empty = CtcDecode::process(
            test_frame(),
            vec![Input {
                name: "rec".into(),
                value: Value::Tensors(vec![]),
            }],
        )
        .unwrap();
        assert!(matches!(empty, Value::Json(t) if t == "{\"lines\":[]}"));
        let none = CtcDecode::process(test_frame(), vec![tensor(&[0, 40, 7], vec![])]).unwrap();
        assert!(matches!(none, Value::Json(t) if t == "{\"lines\":[]}"));
        // Class count mismatch names both numbers.
        match CtcDecode::process(test_frame(), vec![tensor(&[1, 1, 6], vec![0.0; 6])]) {
            Err(NodeError::InvalidInput(m)) => assert!(m.contains('6') && m.contains('5'), "{m}"),
            other => panic!("{other:?}"),
        }
        // Wrong rank, wrong length, not tensors.
        for bad in [
            tensor(&[2, 5], vec![0.0; 10]),
            tensor(&[1, 2, 5], vec![0.0; 9]),
            Input {
                name: "x".into(),
                value: Value::Json("{}".into()),
            },
        ] {
            assert!(matches!(
                CtcDecode::process(test_frame(), vec![bad]),
                Err(NodeError::InvalidInput(_))
            ));
        }
        // A ragged batch (one run per crop): its parts' lines in order; parts of
        // different names are refused.
        let part = |name: &str, shape: &[u32], data: Vec<f32>| Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        };
        let ragged = |second: &str| {
            CtcDecode::process(
                test_frame(),
                vec![Input {
                    name: "rec".into(),
                    value: Value::Tensors(vec![
                        part("out", &[1, 2, 5], steps(5, &[(1, 1.0), (2, 1.0)])),
                        part(second, &[1, 1, 5], steps(5, &[(3, 1.0)])),
                    ]),
                }],
            )
        };
        let out = ragged("out").unwrap();
        assert!(
            matches!(&out, Value::Json(t) if t == "{\"lines\":[{\"text\":\"ab\",\"score\":1.0},{\"text\":\"c\",\"score\":1.0}]}"),
            "{out:?}"
        );
        assert!(matches!(ragged("other"), Err(NodeError::InvalidInput(_))));
        // Without the space class.
        CtcDecode::init("{\"alphabet\": \"a\\nb\\nc\", \"space\": false}".into()).unwrap();
        assert!(CtcDecode::process(
            test_frame(),
            vec![tensor(&[1, 1, 4], vec![0.1, 0.2, 0.3, 0.4])]
        )
        .is_ok());
    }
}
