//! Counting what happened to each frame, and the end-of-run summary.
//!
//! [`Tally`] is shared by the sender (which records when frame *n* left) and the reader (which
//! records what came back). Replies are matched to sends by `frame_index`: the client numbers
//! its binary messages from 1 exactly as the server does, so reply *n* answers the *n*-th frame
//! sent. Latency is measured from just before a frame is handed to the socket to the moment its
//! reply is read, and only for frames that produced a `result` (a drop reply is fast by design
//! and would flatter the numbers).
//!
//! Everything here is plain data and arithmetic, so the summary is tested without a server.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::reply::Reply;
use crate::stats;

/// Running counts for one session.
#[derive(Debug, Default)]
pub struct Tally {
    /// Send time of every frame that has not been answered yet.
    pending: HashMap<u64, Instant>,
    latencies: Vec<Duration>,
    first_sent: Option<Instant>,
    last_event: Option<Instant>,
    pub sent: u64,
    pub results: u64,
    pub dropped: u64,
    /// Per-frame errors by kind (`pipeline_failure`, `internal_error`, ...).
    pub frame_errors: BTreeMap<String, u64>,
    /// Unsolicited warnings by kind (`slow_down`, ...).
    pub warnings: BTreeMap<String, u64>,
    /// The fatal error the server closed with, as (error, detail).
    pub fatal: Option<(String, String)>,
    /// Messages of no known shape.
    pub unrecognized: u64,
    /// Frame replies for an index never sent, or answered twice.
    pub unmatched: u64,
    /// When the first and the latest frame reply (result, dropped or per-frame error) came.
    first_reply: Option<Instant>,
    last_reply: Option<Instant>,
    /// The longest time between two consecutive frame replies.
    pub longest_gap: Duration,
    /// Frames of earlier sessions ([`Tally::absorb`]) that were never answered.
    carried_unanswered: u64,
}

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that frame `frame_index` is about to be sent at `at`.
    pub fn record_sent(&mut self, frame_index: u64, at: Instant) {
        self.sent += 1;
        self.first_sent.get_or_insert(at);
        self.pending.insert(frame_index, at);
    }

    /// Records one classified server message received at `at`.
    pub fn record_reply(&mut self, reply: &Reply, at: Instant) {
        self.last_event = Some(at);
        if reply.frame_index().is_some() {
            self.note_reply_at(at);
        }
        let sent_at = reply.frame_index().map(|n| self.pending.remove(&n));
        if let Some(None) = sent_at {
            self.unmatched += 1;
            return;
        }
        match reply {
            Reply::Result { .. } => {
                self.results += 1;
                if let Some(Some(sent_at)) = sent_at {
                    self.latencies.push(at.saturating_duration_since(sent_at));
                }
            }
            Reply::Dropped { .. } => self.dropped += 1,
            Reply::FrameError { error, .. } => {
                *self.frame_errors.entry(error.clone()).or_default() += 1;
            }
            Reply::Warning { warning } => {
                *self.warnings.entry(warning.clone()).or_default() += 1;
            }
            Reply::Fatal { error, detail, .. } => {
                self.fatal
                    .get_or_insert_with(|| (error.clone(), detail.clone()));
            }
            Reply::Unrecognized => self.unrecognized += 1,
        }
    }

    /// Frames sent and not answered yet (with those an earlier session left unanswered).
    pub fn outstanding(&self) -> u64 {
        self.pending.len() as u64 + self.carried_unanswered
    }

    /// These counts with the unanswered frames left out (`--reconnect` counts those of a
    /// session closed 1001 as abandoned instead).
    pub fn without_unanswered(mut self) -> Self {
        self.pending.clear();
        self.carried_unanswered = 0;
        self
    }

    /// Frame replies received: results, drops and per-frame errors.
    pub fn answered(&self) -> u64 {
        self.results + self.dropped + self.frame_errors.values().sum::<u64>()
    }

    fn note_reply_at(&mut self, at: Instant) {
        if let Some(previous) = self.last_reply {
            self.longest_gap = self.longest_gap.max(at.saturating_duration_since(previous));
        }
        self.first_reply.get_or_insert(at);
        self.last_reply = Some(at);
    }

    /// Adds a later session's counts to this running total (`--reconnect`). Its unanswered
    /// frames are carried as a count (their indices belong to that session); the gap between
    /// this total's last reply and that session's first counts towards `longest_gap`.
    pub fn absorb(&mut self, later: Tally) {
        if let Some(first) = later.first_reply {
            self.note_reply_at(first);
        }
        if let Some(last) = later.last_reply {
            self.last_reply = Some(last);
        }
        self.longest_gap = self.longest_gap.max(later.longest_gap);
        self.carried_unanswered += later.outstanding();
        self.latencies.extend(later.latencies);
        if let Some(first) = later.first_sent {
            self.first_sent.get_or_insert(first);
        }
        if later.last_event.is_some() {
            self.last_event = later.last_event;
        }
        self.sent += later.sent;
        self.results += later.results;
        self.dropped += later.dropped;
        for (k, v) in later.frame_errors {
            *self.frame_errors.entry(k).or_default() += v;
        }
        for (k, v) in later.warnings {
            *self.warnings.entry(k).or_default() += v;
        }
        if self.fatal.is_none() {
            self.fatal = later.fatal;
        }
        self.unrecognized += later.unrecognized;
        self.unmatched += later.unmatched;
    }

    /// `slow_down` warnings received.
    pub fn slow_downs(&self) -> u64 {
        self.warnings.get("slow_down").copied().unwrap_or(0)
    }

    /// From the first frame sent to the last message received (or to `now` if later frames
    /// are still unanswered, so a stalled server does not look fast).
    pub fn elapsed(&self, now: Instant) -> Duration {
        let Some(first) = self.first_sent else {
            return Duration::ZERO;
        };
        let end = match self.last_event {
            Some(last) if self.outstanding() == 0 => last,
            _ => now,
        };
        end.saturating_duration_since(first)
    }

    /// The human-readable end-of-run summary.
    pub fn render(&self, now: Instant) -> String {
        let elapsed = self.elapsed(now);
        let secs = elapsed.as_secs_f64();
        let rate = |n: u64| {
            if secs > 0.0 {
                format!("{:.2}", n as f64 / secs)
            } else {
                "n/a".to_string()
            }
        };
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(out, "--- summary ---");
        let _ = writeln!(out, "frames sent:        {}", self.sent);
        let _ = writeln!(out, "results:            {}", self.results);
        let _ = writeln!(out, "dropped:            {}", self.dropped);
        let errors: u64 = self.frame_errors.values().sum();
        let _ = writeln!(
            out,
            "frame errors:       {errors}{}",
            breakdown(&self.frame_errors)
        );
        let _ = writeln!(out, "unanswered:         {}", self.outstanding());
        let _ = writeln!(out, "slow_down warnings: {}", self.slow_downs());
        let other_warnings: u64 = self.warnings.values().sum::<u64>() - self.slow_downs();
        if other_warnings > 0 {
            let _ = writeln!(
                out,
                "other warnings:     {other_warnings}{}",
                breakdown(&self.warnings)
            );
        }
        if self.unrecognized > 0 || self.unmatched > 0 {
            let _ = writeln!(
                out,
                "odd replies:        {} unrecognized, {} unmatched frame_index",
                self.unrecognized, self.unmatched
            );
        }
        match &self.fatal {
            Some((error, detail)) if detail.is_empty() => {
                let _ = writeln!(out, "fatal error:        {error}");
            }
            Some((error, detail)) => {
                let _ = writeln!(out, "fatal error:        {error}: {detail}");
            }
            None => {
                let _ = writeln!(out, "fatal error:        none");
            }
        }
        let _ = writeln!(out, "elapsed:            {secs:.3} s");
        let _ = writeln!(
            out,
            "achieved fps:       {} sent/s, {} results/s",
            rate(self.sent),
            rate(self.results)
        );
        match stats::percentiles(&self.latencies) {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "latency ms ({} results): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
                    p.count, p.p50, p.p90, p.p99, p.max
                );
            }
            None => {
                let _ = writeln!(out, "latency ms:         no results");
            }
        }
        out
    }
}

/// ` (a: 1, b: 2)`, or nothing for an empty map.
fn breakdown(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!(" ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::parse;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn latency_is_matched_by_frame_index() {
        let t0 = Instant::now();
        let mut t = Tally::new();
        t.record_sent(1, t0);
        t.record_sent(2, t0 + ms(10));
        // Replies may come back in any order.
        t.record_reply(&parse(r#"{"frame_index":2,"result":{}}"#), t0 + ms(40));
        t.record_reply(&parse(r#"{"frame_index":1,"result":{}}"#), t0 + ms(50));
        assert_eq!(t.results, 2);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.latencies, vec![ms(30), ms(50)]);
        assert_eq!(t.elapsed(t0 + ms(999)), ms(50));
    }

    #[test]
    fn counts_every_kind() {
        let t0 = Instant::now();
        let mut t = Tally::new();
        for i in 1..=5 {
            t.record_sent(i, t0);
        }
        for line in [
            r#"{"frame_index":1,"result":{"width":640}}"#,
            r#"{"frame_index":2,"dropped":true}"#,
            r#"{"warning":"slow_down"}"#,
            r#"{"frame_index":3,"error":"pipeline_failure","detail":"x"}"#,
            r#"{"frame_index":4,"error":"internal_error","detail":"y"}"#,
            r#"{"warning":"slow_down"}"#,
            r#"{"frame_index":9,"result":{}}"#,
            r#"{"frame_index":1,"result":{}}"#,
            "garbage",
        ] {
            t.record_reply(&parse(line), t0 + ms(20));
        }
        assert_eq!(t.sent, 5);
        assert_eq!(t.results, 1);
        assert_eq!(t.dropped, 1);
        assert_eq!(t.frame_errors.values().sum::<u64>(), 2);
        assert_eq!(t.slow_downs(), 2);
        assert_eq!(t.unmatched, 2, "unknown index 9 and a second reply to 1");
        assert_eq!(t.unrecognized, 1);
        assert_eq!(t.outstanding(), 1, "frame 5 is unanswered");
        assert_eq!(t.latencies, vec![ms(20)], "only results give latency");
        assert!(t.fatal.is_none());
    }

    #[test]
    fn first_fatal_is_kept() {
        let mut t = Tally::new();
        let now = Instant::now();
        t.record_reply(
            &parse(r#"{"error":"invalid_frame","detail":"Not a valid JPEG image"}"#),
            now,
        );
        t.record_reply(&parse(r#"{"error":"other"}"#), now);
        assert_eq!(
            t.fatal,
            Some(("invalid_frame".into(), "Not a valid JPEG image".into()))
        );
    }

    #[test]
    fn elapsed_runs_to_now_while_frames_are_unanswered() {
        let t0 = Instant::now();
        let mut t = Tally::new();
        assert_eq!(t.elapsed(t0 + ms(5)), Duration::ZERO);
        t.record_sent(1, t0);
        t.record_sent(2, t0);
        t.record_reply(&parse(r#"{"frame_index":1,"result":{}}"#), t0 + ms(10));
        assert_eq!(t.elapsed(t0 + ms(100)), ms(100));
    }

    #[test]
    fn render_contains_every_line() {
        let t0 = Instant::now();
        let mut t = Tally::new();
        for i in 1..=4 {
            t.record_sent(i, t0);
        }
        t.record_reply(&parse(r#"{"frame_index":1,"result":{}}"#), t0 + ms(100));
        t.record_reply(&parse(r#"{"frame_index":2,"dropped":true}"#), t0 + ms(150));
        t.record_reply(&parse(r#"{"warning":"slow_down"}"#), t0 + ms(160));
        t.record_reply(
            &parse(r#"{"frame_index":3,"error":"pipeline_failure","detail":"d"}"#),
            t0 + ms(300),
        );
        t.record_reply(&parse(r#"{"frame_index":4,"result":{}}"#), t0 + ms(500));
        t.record_reply(
            &parse(r#"{"error":"invalid_frame","detail":"Not a valid JPEG image"}"#),
            t0 + ms(500),
        );
        let text = t.render(t0 + ms(2000));
        for expected in [
            "frames sent:        4\n",
            "results:            2\n",
            "dropped:            1\n",
            "frame errors:       1 (pipeline_failure: 1)\n",
            "unanswered:         0\n",
            "slow_down warnings: 1\n",
            "fatal error:        invalid_frame: Not a valid JPEG image\n",
            "elapsed:            0.500 s\n",
            "achieved fps:       8.00 sent/s, 4.00 results/s\n",
            "latency ms (2 results): p50 100.0  p90 500.0  p99 500.0  max 500.0\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("odd replies"));
        assert!(!text.contains("other warnings"));
    }

    #[test]
    fn absorb_adds_sessions_and_measures_the_gap_across_them() {
        let t0 = Instant::now();
        let mut first = Tally::new();
        first.record_sent(1, t0);
        first.record_sent(2, t0 + ms(10));
        first.record_reply(&parse(r#"{"frame_index":1,"result":{}}"#), t0 + ms(20));
        first.record_reply(&parse(r#"{"frame_index":2,"dropped":true}"#), t0 + ms(50));
        assert_eq!(first.longest_gap, ms(30));
        let mut second = Tally::new();
        // Indices restart at 1 on a new session.
        second.record_sent(1, t0 + ms(300));
        second.record_sent(2, t0 + ms(310));
        second.record_reply(&parse(r#"{"frame_index":1,"result":{}}"#), t0 + ms(330));
        first.absorb(second);
        assert_eq!(first.sent, 4);
        assert_eq!(first.answered(), 3);
        assert_eq!(first.outstanding(), 1, "frame 2 of the second session");
        assert_eq!(first.longest_gap, ms(280), "from 50 ms to 330 ms");
        assert_eq!(first.latencies, vec![ms(20), ms(30)]);
        let abandoned = Tally::new();
        first.absorb(abandoned.without_unanswered());
        assert_eq!(first.outstanding(), 1);
    }

    #[test]
    fn render_with_nothing_sent() {
        let text = Tally::new().render(Instant::now());
        assert!(text.contains("frames sent:        0\n"));
        assert!(text.contains("achieved fps:       n/a sent/s, n/a results/s\n"));
        assert!(text.contains("latency ms:         no results\n"));
        assert!(text.contains("fatal error:        none\n"));
    }
}
