//! The native line-cache node (`kind = "line_cache"`): every box's line on
//! every frame, read now or remembered from when its crop last changed.
//!
//! Inputs: the `plan` tensor of a `changed_crops` node (`[N, 2]`: each box's
//! track and whether its crop was sent to the recogniser) and, optionally
//! (`"ctc?"`: skipped when no crop changed), the decoder's lines for the crops
//! sent on (`{"lines": [{"text", "score"}]}`, in the same order). Session
//! state: the last line read for each track on the frame. Output: one line
//! per box, in box order, `{"lines": [{"text", "score", "reused"}]}`, where
//! `reused` says the line was not read on this frame. A track whose line is
//! not remembered but marked reusable, or a count of lines that does not
//! match the plan, is a wiring error and fails the frame (whose failure then
//! resets the session's node state, so the next frame reads everything).

use std::collections::HashMap;

use serde_json::{json, Value as Json};

use super::changed_crops::PLAN;
use super::NodeFailure;
use crate::value::Value;

pub(super) fn check_inputs(inputs: usize) -> Result<(), String> {
    if !(1..=2).contains(&inputs) {
        return Err("line_cache takes a changed_crops plan and (optionally) the lines read".into());
    }
    Ok(())
}

/// A line as the decoder gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub score: f64,
}

/// One session's lines, by track.
#[derive(Default)]
pub struct State {
    lines: HashMap<u64, Line>,
}

/// Each box's line and whether it was reused, given the plan's rows
/// `(track, read now)` and the lines read now, in order.
pub fn pair(
    state: &mut State,
    plan: &[(u64, bool)],
    read: Vec<Line>,
) -> Result<Vec<(Line, bool)>, String> {
    let wanted = plan.iter().filter(|(_, now)| *now).count();
    if wanted != read.len() {
        return Err(format!(
            "{wanted} crops were sent to be read but {} lines came back",
            read.len()
        ));
    }
    let mut read = read.into_iter();
    let mut out = Vec::with_capacity(plan.len());
    for &(track, now) in plan {
        if now {
            let line = read.next().ok_or("fewer lines than crops")?;
            state.lines.insert(track, line.clone());
            out.push((line, false));
        } else {
            let line = state.lines.get(&track).cloned().ok_or_else(|| {
                format!("track {track} is to be reused, but no line was read for it")
            })?;
            out.push((line, true));
        }
    }
    let on_frame: std::collections::HashSet<u64> = plan.iter().map(|(t, _)| *t).collect();
    state.lines.retain(|t, _| on_frame.contains(t));
    Ok(out)
}

fn parse_plan(value: &Value) -> Result<Vec<(u64, bool)>, String> {
    let Value::Tensors(ts) = value else {
        return Err(format!("the plan is {}, not tensors", value.kind()));
    };
    let plan = ts
        .iter()
        .find(|t| t.name == PLAN)
        .ok_or("no 'plan' tensor (from a changed_crops node)")?;
    let values = plan
        .data
        .i64()
        .filter(|_| plan.shape.len() == 2 && plan.shape[1] == 2 && plan.is_consistent())
        .ok_or("the plan must be an i64 tensor [N, 2]")?;
    values
        .chunks_exact(2)
        .map(|row| match row {
            [track, now] if *track >= 0 && (0..=1).contains(now) => Ok((*track as u64, *now == 1)),
            _ => Err(format!("bad plan row {row:?}")),
        })
        .collect()
}

fn parse_lines(v: &Json) -> Result<Vec<Line>, String> {
    v.get("lines")
        .and_then(Json::as_array)
        .ok_or("the lines input has no \"lines\" array")?
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let text = l.get("text").and_then(Json::as_str);
            let score = l.get("score").and_then(Json::as_f64);
            match (text, score) {
                (Some(text), Some(score)) => Ok(Line {
                    text: text.to_string(),
                    score,
                }),
                _ => Err(format!("line {i} lacks a text or a score")),
            }
        })
        .collect()
}

pub(super) fn run(inputs: &[(String, Value)], state: &mut State) -> Result<Value, NodeFailure> {
    let fail = NodeFailure::Node;
    let (mut plan, mut lines) = (None, None);
    for (name, value) in inputs {
        match value {
            Value::Tensors(_) if plan.is_none() => plan = Some(parse_plan(value).map_err(fail)?),
            Value::Json(v) if lines.is_none() => lines = Some(parse_lines(v).map_err(fail)?),
            other => {
                return Err(fail(format!(
                    "input '{name}' ({}) is neither a plan (tensors) nor lines (JSON)",
                    other.kind()
                )))
            }
        }
    }
    let plan = plan.ok_or_else(|| fail("needs a changed_crops plan".into()))?;
    let paired = pair(state, &plan, lines.unwrap_or_default()).map_err(fail)?;
    let lines: Vec<Json> = paired
        .into_iter()
        .map(|(l, reused)| json!({"text": l.text, "score": l.score, "reused": reused}))
        .collect();
    Ok(Value::Json(json!({ "lines": lines })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        Line {
            text: text.into(),
            score: 0.9,
        }
    }

    #[test]
    fn lines_read_now_are_remembered_and_reused_until_their_track_leaves() {
        let mut state = State::default();
        let first = pair(
            &mut state,
            &[(1, true), (2, true)],
            vec![line("A"), line("B")],
        );
        assert_eq!(first, Ok(vec![(line("A"), false), (line("B"), false)]));
        let second = pair(&mut state, &[(1, false), (2, true)], vec![line("C")]);
        assert_eq!(second, Ok(vec![(line("A"), true), (line("C"), false)]));
        // Track 1 leaves; coming back marked reusable is an error, not an old line.
        assert!(pair(&mut state, &[(2, false)], vec![]).is_ok());
        let back = pair(&mut state, &[(1, false)], vec![]);
        assert!(back.is_err(), "{back:?}");
        // Counts must agree with the plan.
        assert!(pair(&mut state, &[(3, true)], vec![]).is_err());
    }
}
