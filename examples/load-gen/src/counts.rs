//! The counters a session keeps, and a string-keyed count with a bounded number of keys.

use std::collections::BTreeMap;

use serde::Serialize;

/// Distinct keys a [`CappedCounts`] holds before folding the rest into [`OTHER_KEY`].
pub const MAX_KEYS: usize = 32;
/// Where counts beyond [`MAX_KEYS`] go.
pub const OTHER_KEY: &str = "other";
/// Longest key kept (server-supplied strings are cut here).
const MAX_KEY_LEN: usize = 64;

/// Counts by a server-supplied string (error code, drop reason), bounded in size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CappedCounts(BTreeMap<String, u64>);

impl CappedCounts {
    pub fn add(&mut self, key: &str, n: u64) {
        let key = match key.char_indices().nth(MAX_KEY_LEN) {
            Some((cut, _)) => &key[..cut],
            None => key,
        };
        if let Some(count) = self.0.get_mut(key) {
            *count += n;
        } else if self.0.len() + 1 < MAX_KEYS {
            self.0.insert(key.to_string(), n);
        } else {
            *self.0.entry(OTHER_KEY.to_string()).or_default() += n;
        }
    }

    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, &v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn merge(&mut self, other: &CappedCounts) {
        for (k, v) in other.iter() {
            self.add(k, v);
        }
    }
}

/// Replies and disconnects that break the wire contract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Violations {
    /// Replies whose `frame_index` was never sent on that connection.
    pub unknown_index: u64,
    /// Second (or later) replies for an already answered frame.
    pub duplicate: u64,
    /// Frames unanswered when the client ended a connection normally (after draining).
    pub unanswered_at_end: u64,
    /// Frames unanswered when the server closed (or lost) the connection without a fatal error.
    pub unanswered_on_server_close: u64,
}

impl Violations {
    pub fn total(&self) -> u64 {
        self.unknown_index
            + self.duplicate
            + self.unanswered_at_end
            + self.unanswered_on_server_close
    }

    fn merge(&mut self, o: &Violations) {
        self.unknown_index += o.unknown_index;
        self.duplicate += o.duplicate;
        self.unanswered_at_end += o.unanswered_at_end;
        self.unanswered_on_server_close += o.unanswered_on_server_close;
    }
}

/// Everything counted for one session (or, merged, for the run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counters {
    pub frames_sent: u64,
    pub results: u64,
    pub dropped: u64,
    /// Drops by their `reason` field (`unspecified` when absent).
    pub dropped_by_reason: CappedCounts,
    /// Error replies: per-frame errors (first replies only) and session-level ones.
    pub errors: u64,
    pub errors_by_code: CappedCounts,
    /// Errors after which the server closes (no `frame_index`, or a fatal code).
    pub fatal_errors: u64,
    pub slow_down: u64,
    pub other_warnings: u64,
    /// Text that matched no reply shape, and binary messages.
    pub unrecognized: u64,
    pub connections_opened: u64,
    /// Upgrades refused with an HTTP status.
    pub connections_refused: u64,
    /// Refusals by the `error` field of the body (`http_<status>` when there is none).
    pub refused_by_code: CappedCounts,
    /// Connects that failed without an HTTP answer (TCP refused, timeout, ...).
    pub connect_failures: u64,
    /// Connections the server ended (close frame or lost connection) before the client did.
    pub closed_by_server: u64,
    /// Connections the client cut on purpose (churn).
    pub abrupt_disconnects: u64,
    /// Frames outstanding at a churn disconnect (expected to go unanswered).
    pub abandoned: u64,
    /// Frames outstanding when the server closed after a fatal error (expected).
    pub unanswered_after_fatal: u64,
    /// Times the sender found [`crate::ledger`]'s outstanding cap reached and waited or skipped.
    pub window_full: u64,
    pub violations: Violations,
}

impl Counters {
    pub fn merge(&mut self, o: &Counters) {
        self.frames_sent += o.frames_sent;
        self.results += o.results;
        self.dropped += o.dropped;
        self.dropped_by_reason.merge(&o.dropped_by_reason);
        self.errors += o.errors;
        self.errors_by_code.merge(&o.errors_by_code);
        self.fatal_errors += o.fatal_errors;
        self.slow_down += o.slow_down;
        self.other_warnings += o.other_warnings;
        self.unrecognized += o.unrecognized;
        self.connections_opened += o.connections_opened;
        self.connections_refused += o.connections_refused;
        self.refused_by_code.merge(&o.refused_by_code);
        self.connect_failures += o.connect_failures;
        self.closed_by_server += o.closed_by_server;
        self.abrupt_disconnects += o.abrupt_disconnects;
        self.abandoned += o.abandoned;
        self.unanswered_after_fatal += o.unanswered_after_fatal;
        self.window_full += o.window_full;
        self.violations.merge(&o.violations);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_capped() {
        let mut c = CappedCounts::default();
        for i in 0..100 {
            c.add(&format!("code{i}"), 1);
        }
        assert_eq!(c.iter().count(), MAX_KEYS);
        assert_eq!(c.get(OTHER_KEY), 100 - (MAX_KEYS as u64 - 1));
        assert_eq!(c.iter().map(|(_, v)| v).sum::<u64>(), 100);
        // Existing keys keep counting after the cap.
        c.add("code0", 5);
        assert_eq!(c.get("code0"), 6);
    }

    #[test]
    fn long_keys_are_cut() {
        let mut c = CappedCounts::default();
        c.add(&"é".repeat(200), 1);
        assert_eq!(c.get(&"é".repeat(64)), 1);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = Counters {
            frames_sent: 3,
            ..Counters::default()
        };
        a.errors_by_code.add("x", 1);
        a.violations.duplicate = 1;
        let mut b = a.clone();
        b.violations.unanswered_at_end = 2;
        a.merge(&b);
        assert_eq!(a.frames_sent, 6);
        assert_eq!(a.errors_by_code.get("x"), 2);
        assert_eq!(a.violations.total(), 4);
    }
}
