//! The machine-readable summary (`--json`): the counts a test or a script asserts on.
//!
//! One flat JSON object, written once at the end, so that a caller (the rolling-update test in
//! `scripts/rollout-test.sh`) need not parse the human summary. The keys are the same ones the
//! Python client writes, so one checker reads both.

use std::time::Instant;

use serde_json::{json, Value};

use crate::summary::Tally;

/// What `--reconnect` adds to a session's counts; all zero without it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rollup {
    pub reconnects: u64,
    pub failed_connects: u64,
    pub abandoned: u64,
}

/// The summary as JSON. `sent == answered + abandoned_by_1001 + unanswered`.
pub fn to_json(tally: &Tally, rollup: Rollup, problem: Option<&str>, now: Instant) -> Value {
    json!({
        "client": "rust",
        "sent": tally.sent,
        "answered": tally.answered(),
        "results": tally.results,
        "dropped": tally.dropped,
        "frame_errors": tally.frame_errors.values().sum::<u64>(),
        "abandoned_by_1001": rollup.abandoned,
        "unanswered": tally.outstanding(),
        "unmatched": tally.unmatched,
        "reconnects": rollup.reconnects,
        "failed_connects": rollup.failed_connects,
        "longest_gap_ms": tally.longest_gap.as_secs_f64() * 1000.0,
        "elapsed_s": tally.elapsed(now).as_secs_f64(),
        "fatal": tally.fatal.as_ref().map(|(error, _)| error.clone()),
        "problem": problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::parse;

    #[test]
    fn counts_add_up() {
        let t0 = Instant::now();
        let mut t = Tally::new();
        t.record_sent(1, t0);
        t.record_sent(2, t0);
        t.record_reply(&parse(r#"{"frame_index":1,"result":{}}"#), t0);
        let rollup = Rollup {
            reconnects: 2,
            failed_connects: 1,
            abandoned: 3,
        };
        let v = to_json(&t, rollup, None, t0);
        assert_eq!(v["sent"], 2);
        assert_eq!(v["answered"], 1);
        assert_eq!(v["unanswered"], 1);
        assert_eq!(v["abandoned_by_1001"], 3);
        assert_eq!(v["reconnects"], 2);
        assert_eq!(v["problem"], Value::Null);
    }
}
