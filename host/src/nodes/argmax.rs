//! The native argmax node (`kind = "argmax"`): reduce a score tensor over its
//! last axis to the winning class and its score, before a Wasm node sees it.
//!
//! Why it exists: a CTC recogniser answers `[N, T, C]` with C in the tens of
//! thousands (PP-OCRv6: 18,710 classes), about 9 MB for three lines. Copying
//! that into a Wasm instance's memory and scanning it there cost more per frame
//! than everything else around the models together, and grew every session's
//! linear memory to the largest batch it had seen. Greedy CTC decoding needs
//! only each step's best class and its probability, so this node hands the
//! decoder `index` and `score` (`[N, T]`, a few hundred floats) plus `classes`
//! (`[1]`, C, so the decoder can still check its alphabet against the model).
//! The decoding logic (merging repeats, dropping blanks, the alphabet, the
//! confidence) stays in the replaceable Wasm node. A ragged batch (the
//! recogniser run once per crop at its own width) is joined here into one
//! `[N, T]` pair, so the decoder sees one batch whichever way it was run.
//!
//! Semantics match the Wasm decoder's own argmax: the first maximum wins, NaN
//! never wins, a row of only NaN gives index 0 and score `-inf`. Indices are
//! carried as f32 (tensors are f32 on the wire), exact below 2^24 classes.

use std::sync::Arc;

use serde::Deserialize;

use super::{kind_of, par, typed_config, NodeFailure, RunContext};
use crate::value::{Tensor, Value};

/// The largest class count whose indices are exact in an f32.
pub const MAX_CLASSES: u32 = 1 << 24;

/// The most `[N, T]` slots a ragged batch may be padded out to (32 MiB of
/// index and score): a thousand crops of the widest text fit many times over,
/// while parts of mismatched shapes cannot make a frame allocate without bound.
pub const MAX_JOINED_SLOTS: usize = 1 << 22;

/// Which tensor to reduce when the input holds several (default: the only one).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArgmaxConfig {
    #[serde(default)]
    pub tensor: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArgmaxError {
    #[error("{0}")]
    NotF32(String),
    #[error("no tensor named '{0}' among the inputs {1:?}")]
    NoSuchTensor(String, Vec<String>),
    #[error("{0} tensors offered ({1:?}); name one with `tensor`")]
    Ambiguous(usize, Vec<String>),
    #[error("tensor '{name}' has shape {shape:?}; argmax needs at least one axis of classes")]
    NoClassAxis { name: String, shape: Vec<u32> },
    #[error("tensor '{name}' has {classes} classes; indices are exact only up to {MAX_CLASSES}")]
    TooManyClasses { name: String, classes: u32 },
    #[error(
        "the tensors named '{0}' are not one ragged batch: each must be [N, T, C] with the same C"
    )]
    RaggedMismatch(String),
    #[error("a ragged batch joined into [{lines}, {steps}] is over {MAX_JOINED_SLOTS} slots")]
    RaggedTooLarge { lines: u32, steps: u32 },
    #[error("tensor '{name}' of shape {shape:?} holds {len} values")]
    ShapeMismatch {
        name: String,
        shape: Vec<u32>,
        len: usize,
    },
}

/// Reduces the chosen tensor; no tensors in (an empty batch upstream) gives no tensors out.
///
/// Several tensors of the chosen name (or, unnamed, all offered tensors when
/// they share one name) are a ragged batch, such as a recogniser run once per
/// text crop: each `[n_i, T_i, C]` part is reduced and the parts are joined
/// along the first axis into `[sum n_i, max T_i]`, each row padded at its end
/// with index 0 and score 0 (CTC's blank: a greedy decoder reads the same
/// lines). Rows are reduced over up to `threads` threads ([`par::for_each`]).
pub fn argmax(
    offered: &[&Tensor],
    config: &ArgmaxConfig,
    threads: usize,
) -> Result<Vec<Tensor>, ArgmaxError> {
    let names = || offered.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let wanted = match (&config.tensor, offered) {
        (_, []) => return Ok(Vec::new()),
        (Some(name), _) => name.as_str(),
        (None, [first, ..]) => first.name.as_str(),
    };
    let parts: Vec<&Tensor> = offered
        .iter()
        .filter(|t| t.name == wanted)
        .copied()
        .collect();
    if parts.is_empty() {
        return Err(ArgmaxError::NoSuchTensor(wanted.to_string(), names()));
    }
    if config.tensor.is_none() && parts.len() != offered.len() {
        return Err(ArgmaxError::Ambiguous(offered.len(), names()));
    }
    let mut classes = None;
    for part in &parts {
        let c = class_count(part)?;
        if classes.is_some_and(|seen| seen != c) {
            return Err(ArgmaxError::RaggedMismatch(wanted.to_string()));
        }
        classes = Some(c);
    }
    let Some(classes) = classes else {
        return Ok(Vec::new());
    };
    // Each part as (lines, steps per line): a lone tensor of any rank is its
    // rows, one step each; a ragged part `[n, T, C]` is n lines of T steps.
    let layout: Vec<(usize, usize)> = match parts.as_slice() {
        [one] => vec![(one.data.len() / classes as usize, 1)],
        several => several
            .iter()
            .map(|part| match part.shape.as_slice() {
                &[n, t, _] => Ok((n as usize, t as usize)),
                _ => Err(ArgmaxError::RaggedMismatch(wanted.to_string())),
            })
            .collect::<Result<_, _>>()?,
    };
    let lines = layout
        .iter()
        .map(|l| l.0)
        .fold(0usize, usize::saturating_add);
    let steps = layout.iter().map(|l| l.1).max().unwrap_or(0);
    let shape = match parts.as_slice() {
        [one] => one.shape[..one.shape.len() - 1].to_vec(),
        _ if lines.saturating_mul(steps) > MAX_JOINED_SLOTS => {
            return Err(ArgmaxError::RaggedTooLarge {
                lines: u32::try_from(lines).unwrap_or(u32::MAX),
                steps: u32::try_from(steps).unwrap_or(u32::MAX),
            })
        }
        _ => vec![lines as u32, steps as u32],
    };
    let (mut index, mut score) = (vec![0f32; lines * steps], vec![0f32; lines * steps]);
    // Each output line (of `steps` slots) takes the next input line's rows.
    let mut out_lines = index.chunks_mut(steps).zip(score.chunks_mut(steps));
    let mut rows_and_slots = Vec::with_capacity(lines * steps);
    for (part, &(part_lines, part_steps)) in parts.iter().zip(&layout) {
        let line_len = part_steps * classes as usize;
        for k in 0..part_lines {
            let Some((index, score)) = out_lines.next() else {
                break;
            };
            let line = part
                .data
                .f32()
                .and_then(|values| values.get(k * line_len..(k + 1) * line_len))
                .unwrap_or(&[]);
            let rows = line.chunks_exact(classes as usize);
            rows_and_slots.extend(rows.zip(index.iter_mut().zip(score.iter_mut())));
        }
    }
    par::for_each(threads, rows_and_slots, |(row, (index, score))| {
        let (i, s) = row_argmax(row);
        *index = i as f32;
        *score = s;
    });
    Ok(vec![
        Tensor {
            name: "index".into(),
            shape: shape.clone(),
            data: index.into(),
        },
        Tensor {
            name: "score".into(),
            shape,
            data: score.into(),
        },
        Tensor {
            name: "classes".into(),
            shape: vec![1],
            data: vec![classes as f32].into(),
        },
    ])
}

/// The size of `tensor`'s last axis, once its shape, data and class count are checked.
fn class_count(tensor: &Tensor) -> Result<u32, ArgmaxError> {
    tensor.f32().map_err(ArgmaxError::NotF32)?;
    let classes = match tensor.shape.last() {
        Some(&classes) if classes > 0 => classes,
        _ => {
            return Err(ArgmaxError::NoClassAxis {
                name: tensor.name.clone(),
                shape: tensor.shape.clone(),
            })
        }
    };
    if classes > MAX_CLASSES {
        return Err(ArgmaxError::TooManyClasses {
            name: tensor.name.clone(),
            classes,
        });
    }
    if !tensor.is_consistent() {
        return Err(ArgmaxError::ShapeMismatch {
            name: tensor.name.clone(),
            shape: tensor.shape.clone(),
            len: tensor.data.len(),
        });
    }
    Ok(classes)
}

/// First maximum of `row` (NaN never wins): a lane-wise max the compiler
/// vectorises, then one scan for its first position.
fn row_argmax(row: &[f32]) -> (usize, f32) {
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

// The node's part in `nodes::NativeKind` / `NativeNode`: inputs, config, run.

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if inputs != 1 {
        return Err("argmax takes exactly one input, a tensor list".into());
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<ArgmaxConfig, String> {
    typed_config(table)
}

pub(super) fn run(
    config: &ArgmaxConfig,
    inputs: &[(String, Value)],
    ctx: RunContext,
) -> Result<Value, NodeFailure> {
    match inputs.first() {
        Some((_, Value::Tensors(ts))) => {
            let offered: Vec<&Tensor> = ts.iter().collect();
            argmax(&offered, config, ctx.threads)
                .map(|ts| Value::Tensors(Arc::new(ts)))
                .map_err(|e| NodeFailure::Node(e.to_string()))
        }
        other => Err(NodeFailure::Node(format!(
            "expects tensors, got {}",
            kind_of(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: &[u32], data: Vec<f32>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: data.into(),
        }
    }

    #[test]
    fn splitting_the_rows_over_threads_changes_no_value() -> Result<(), ArgmaxError> {
        let data = (0..3 * 11 * 37)
            .map(|i| ((i * 7919) % 1009) as f32)
            .collect();
        let t = tensor("probs", &[3, 11, 37], data);
        let serial = argmax(&[&t], &ArgmaxConfig::default(), 1)?;
        assert_eq!(serial[0].shape, vec![3, 11]);
        for threads in [2, 4, 64] {
            assert_eq!(argmax(&[&t], &ArgmaxConfig::default(), threads)?, serial);
        }
        Ok(())
    }

    #[test]
    fn reduces_the_last_axis_to_index_and_score() -> Result<(), ArgmaxError> {
        // [2, 2, 3]: four steps of three classes.
        let t = tensor(
            "probs",
            &[2, 2, 3],
            vec![
                0.1,
                0.7,
                0.2, //
                0.5,
                0.5,
                0.0, //
                f32::NAN,
                0.2,
                0.1, //
                0.0,
                0.0,
                0.9,
            ],
        );
        let out = argmax(&[&t], &ArgmaxConfig::default(), 2)?;
        assert_eq!(out[0], tensor("index", &[2, 2], vec![1.0, 0.0, 1.0, 2.0]));
        assert_eq!(out[1], tensor("score", &[2, 2], vec![0.7, 0.5, 0.2, 0.9]));
        assert_eq!(out[2], tensor("classes", &[1], vec![3.0]));
        Ok(())
    }

    /// The rows `ctc-decode`'s own argmax is tested on (`argmax_first_maximum`): the two must
    /// agree, since a pipeline may feed the decoder either form.
    #[test]
    fn agrees_with_the_ctc_decoders_argmax() {
        assert_eq!(row_argmax(&[0.1, 0.7, 0.2]), (1, 0.7));
        assert_eq!(row_argmax(&[0.5, 0.5]), (0, 0.5));
        let mut long = vec![0.0f32; 37];
        long[20] = 0.9;
        long[36] = 0.9;
        assert_eq!(row_argmax(&long), (20, 0.9));
        assert_eq!(row_argmax(&[f32::NAN, 0.2]), (1, 0.2));
    }

    #[test]
    fn long_rows_take_the_first_maximum() -> Result<(), ArgmaxError> {
        let mut data = vec![0.0f32; 18_710];
        data[9_000] = 0.9;
        data[18_709] = 0.9;
        let t = tensor("x", &[1, 1, 18_710], data);
        let out = argmax(&[&t], &ArgmaxConfig::default(), 2)?;
        assert_eq!(out[0].data.f32().unwrap(), vec![9_000.0]);
        assert_eq!(out[1].data.f32().unwrap(), vec![0.9]);
        Ok(())
    }

    #[test]
    fn all_nan_row_gives_index_zero() -> Result<(), ArgmaxError> {
        let t = tensor("x", &[1, 2], vec![f32::NAN, f32::NAN]);
        let out = argmax(&[&t], &ArgmaxConfig::default(), 2)?;
        assert_eq!(out[0].data.f32().unwrap(), vec![0.0]);
        assert_eq!(out[1].data.f32().unwrap(), vec![f32::NEG_INFINITY]);
        Ok(())
    }

    #[test]
    fn picks_by_name_and_refuses_ambiguity() -> Result<(), ArgmaxError> {
        let a = tensor("a", &[1, 2], vec![1.0, 2.0]);
        let b = tensor("b", &[1, 2], vec![3.0, 1.0]);
        let named = ArgmaxConfig {
            tensor: Some("b".into()),
        };
        assert_eq!(
            argmax(&[&a, &b], &named, 2)?[0].data.f32().unwrap(),
            vec![0.0]
        );
        assert!(matches!(
            argmax(&[&a, &b], &ArgmaxConfig::default(), 2),
            Err(ArgmaxError::Ambiguous(2, _))
        ));
        let missing = ArgmaxConfig {
            tensor: Some("c".into()),
        };
        assert!(matches!(
            argmax(&[&a], &missing, 2),
            Err(ArgmaxError::NoSuchTensor(..))
        ));
        assert!(argmax(&[], &ArgmaxConfig::default(), 2)?.is_empty());
        Ok(())
    }

    #[test]
    fn refuses_malformed_tensors() {
        let scalar = tensor("s", &[], vec![1.0]);
        assert!(matches!(
            argmax(&[&scalar], &ArgmaxConfig::default(), 2),
            Err(ArgmaxError::NoClassAxis { .. })
        ));
        let empty_axis = tensor("e", &[2, 0], vec![]);
        assert!(matches!(
            argmax(&[&empty_axis], &ArgmaxConfig::default(), 2),
            Err(ArgmaxError::NoClassAxis { .. })
        ));
        let short = tensor("short", &[2, 3], vec![1.0; 5]);
        assert!(matches!(
            argmax(&[&short], &ArgmaxConfig::default(), 2),
            Err(ArgmaxError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn a_ragged_batch_is_joined_padded_with_the_blank() -> Result<(), ArgmaxError> {
        // Two crops run apart: [1, 2, 3] and [2, 1, 3] (T = 2 and 1).
        let a = tensor("y", &[1, 2, 3], vec![0.1, 0.7, 0.2, 0.0, 0.1, 0.9]);
        let b = tensor("y", &[2, 1, 3], vec![0.6, 0.3, 0.1, 0.2, 0.3, 0.5]);
        let out = argmax(&[&a, &b], &ArgmaxConfig::default(), 2)?;
        assert_eq!(
            out[0],
            tensor("index", &[3, 2], vec![1.0, 2.0, 0.0, 0.0, 2.0, 0.0])
        );
        assert_eq!(
            out[1],
            tensor("score", &[3, 2], vec![0.7, 0.9, 0.6, 0.0, 0.5, 0.0])
        );
        assert_eq!(out[2], tensor("classes", &[1], vec![3.0]));
        // Each part reduced alone gives the same rows, unpadded.
        let alone = argmax(&[&b], &ArgmaxConfig::default(), 1)?;
        assert_eq!(alone[0].data.f32().unwrap(), vec![0.0, 2.0]);
        // A part with no steps still holds its lines' places.
        let none = tensor("y", &[1, 0, 3], vec![]);
        let out = argmax(&[&none, &b], &ArgmaxConfig::default(), 1)?;
        assert_eq!(out[0], tensor("index", &[3, 1], vec![0.0, 0.0, 2.0]));
        Ok(())
    }

    #[test]
    fn ragged_parts_must_agree_on_classes_and_rank() {
        let a = tensor("y", &[1, 2, 3], vec![0.0; 6]);
        let four = tensor("y", &[1, 1, 4], vec![0.0; 4]);
        let flat = tensor("y", &[2, 3], vec![0.0; 6]);
        for other in [&four, &flat] {
            assert_eq!(
                argmax(&[&a, other], &ArgmaxConfig::default(), 1),
                Err(ArgmaxError::RaggedMismatch("y".into()))
            );
        }
        // Parts whose padding would blow up: one long line beside many short ones.
        let long = tensor("y", &[1, 5000, 1], vec![0.0; 5000]);
        let many = tensor("y", &[1000, 1, 1], vec![0.0; 1000]);
        assert_eq!(
            argmax(&[&long, &many], &ArgmaxConfig::default(), 1),
            Err(ArgmaxError::RaggedTooLarge {
                lines: 1001,
                steps: 5000
            })
        );
        // Named parts among other tensors: only the named ones are joined.
        let meta = tensor("meta", &[6], vec![0.0; 6]);
        let named = ArgmaxConfig {
            tensor: Some("y".into()),
        };
        let out = argmax(&[&meta, &a, &a], &named, 1).map(|t| t[0].shape.clone());
        assert_eq!(out, Ok(vec![2, 2]));
    }
}
