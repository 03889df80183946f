//! Per-connection state: frame numbering and the session's counters.
//!
//! A session is nothing but this struct and its WebSocket task; nothing is
//! persisted and everything dies with the connection. Counting lives here,
//! apart from the socket code, so the arithmetic the contract depends on
//! (`frame_index` counts every binary message, dropped ones included) is
//! unit-tested on its own.

use std::sync::atomic::{AtomicU64, Ordering};

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
