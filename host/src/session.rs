//! Per-connection state: frame numbering and the session's counters.
//!
//! A session is nothing but this struct and its WebSocket task; nothing is
//! persisted and everything dies with the connection. Counting lives here,
//! apart from the socket code, so the arithmetic the contract depends on
//! (`frame_index` counts every binary message, dropped ones included) is
//! unit-tested on its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A process-unique session id for logs: a counter, so ids sort by connect time.
pub fn next_session_id() -> String {
    format!("s{}", NEXT_SESSION.fetch_add(1, Ordering::Relaxed))
}

/// What happened to the frames of one session.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SessionCounters {
    /// Index of the last frame received (every binary message counts).
    pub frame_index: u64,
    /// Frames that produced a result.
    pub processed: u64,
    /// Frames dropped by backpressure.
    pub dropped: u64,
    /// Frames answered with a per-frame error (`pipeline_failure`, `internal_error`).
    pub failed: u64,
    /// `slow_down` warnings sent.
    pub slowdowns: u64,
}

impl SessionCounters {
    /// Numbers a newly received frame: 1 for the first.
    pub fn next_frame(&mut self) -> u64 {
        self.frame_index += 1;
        self.frame_index
    }

    pub fn record_processed(&mut self) {
        self.processed += 1;
    }

    pub fn record_dropped(&mut self) {
        self.dropped += 1;
    }

    pub fn record_failed(&mut self) {
        self.failed += 1;
    }

    pub fn record_slowdown(&mut self) {
        self.slowdowns += 1;
    }

    /// Dropped frames over all frames received (0 before the first frame).
    pub fn drop_rate(&self) -> f64 {
        if self.frame_index == 0 {
            0.0
        } else {
            self.dropped as f64 / self.frame_index as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_drops_logs_one_line_then_a_summary_per_interval() {
        let t0 = Instant::now();
        let mut log = DropLog::new(Duration::from_secs(10));
        assert_eq!(log.record(2, true, t0), DropLine::Single);
        for i in 3..=1000 {
            let at = t0 + Duration::from_millis(i);
            assert_eq!(log.record(i, i % 2 == 0, at), DropLine::Held, "frame {i}");
        }
        let summary = log.record(1001, true, t0 + Duration::from_secs(11));
        assert_eq!(
            summary,
            DropLine::Summary(DropSummary {
                busy: 500,
                rate_limited: 499,
                first_frame_index: 3,
                last_frame_index: 1001,
            })
        );
        assert_eq!(log.flush(), None);
        assert_eq!(
            log.record(1002, false, t0 + Duration::from_secs(12)),
            DropLine::Held
        );
        assert_eq!(
            log.flush(),
            Some(DropSummary {
                busy: 0,
                rate_limited: 1,
                first_frame_index: 1002,
                last_frame_index: 1002,
            })
        );
    }

    #[test]
    fn frame_index_starts_at_one_and_counts_every_frame() {
        let mut c = SessionCounters::default();
        assert_eq!(c.next_frame(), 1);
        c.record_processed();
        assert_eq!(c.next_frame(), 2);
        c.record_dropped();
        assert_eq!(c.next_frame(), 3);
        assert_eq!((c.frame_index, c.processed, c.dropped), (3, 1, 1));
    }

    #[test]
    fn drop_rate_is_dropped_over_received() {
        let mut c = SessionCounters::default();
        assert_eq!(c.drop_rate(), 0.0);
        for i in 0..4 {
            c.next_frame();
            if i % 2 == 0 {
                c.record_dropped();
            }
        }
        assert_eq!(c.drop_rate(), 0.5);
    }

    #[test]
    fn session_ids_are_unique() {
        let a = next_session_id();
        let b = next_session_id();
        assert_ne!(a, b);
    }
}

/// What the drop log should write for one dropped frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropLine {
    /// The first drop of an interval: log it as it is.
    Single,
    /// Drops were held back: log one summary of them (this drop included).
    Summary(DropSummary),
    /// Counted into the next summary; write nothing now.
    Held,
}

/// Dropped frames a session held back from the log during one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropSummary {
    pub busy: u64,
    pub rate_limited: u64,
    pub first_frame_index: u64,
    pub last_frame_index: u64,
}

/// Sampling of a session's "frame dropped" log lines: under a flood a session
/// drops frames as fast as they arrive, and a line per frame would make the
/// log the bottleneck (and bury everything else). The first drop of each
/// interval is logged as it happens; later ones are counted, and the first
/// drop after the interval ends logs them as one summary line (the session's
/// end flushes what is left), so a session writes at most about two drop
/// lines per interval whatever the rate.
#[derive(Debug)]
pub struct DropLog {
    interval: Duration,
    window_start: Option<Instant>,
    held: DropSummary,
}

impl DropLog {
    pub fn new(interval: Duration) -> Self {
        DropLog {
            interval,
            window_start: None,
            held: DropSummary::default(),
        }
    }

    /// Records the drop of `frame_index` (`busy` or else rate-limited) at `now`.
    pub fn record(&mut self, frame_index: u64, busy: bool, now: Instant) -> DropLine {
        let open = self
            .window_start
            .is_some_and(|start| now.duration_since(start) < self.interval);
        if self.window_start.is_none() || self.interval.is_zero() {
            self.window_start = Some(now);
            return DropLine::Single;
        }
        if self.held.first_frame_index == 0 {
            self.held.first_frame_index = frame_index;
        }
        self.held.last_frame_index = frame_index;
        if busy {
            self.held.busy += 1;
        } else {
            self.held.rate_limited += 1;
        }
        if open {
            return DropLine::Held;
        }
        self.window_start = Some(now);
        DropLine::Summary(std::mem::take(&mut self.held))
    }

    /// What is still held back, for the session's last log line.
    pub fn flush(&mut self) -> Option<DropSummary> {
        (self.held.first_frame_index != 0).then(|| std::mem::take(&mut self.held))
    }
}
