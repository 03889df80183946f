//! One connection's outstanding set: which frame indices were sent and not yet answered.
//!
//! Indices are assigned 1, 2, 3, ... in send order, as the server assigns them. Only unanswered
//! frames are stored, so the set is as large as the number in flight (which the sender caps at
//! [`MAX_OUTSTANDING`]); an index at or below the highest sent that is not in the set has
//! necessarily been answered already, which is how duplicates are told from never-sent indices.

use std::collections::HashMap;

use tokio::time::Instant;

/// Most frames a connection may have unanswered; the sender waits (or skips a tick) beyond it.
pub(crate) const MAX_OUTSTANDING: usize = 4096;

/// What a reply's `frame_index` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The first reply for a frame that was sent at `sent_at`.
    First { sent_at: Instant },
    /// That frame was already answered.
    Duplicate,
    /// No frame with that index was sent (0, or beyond the last sent).
    NeverSent,
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    sent: u64,
    pending: HashMap<u64, Instant>,
}

impl Ledger {
    /// Records a frame about to be sent; returns its index.
    pub(crate) fn record_send(&mut self, at: Instant) -> u64 {
        self.sent += 1;
        self.pending.insert(self.sent, at);
        self.sent
    }

    pub(crate) fn answer(&mut self, index: u64) -> Answer {
        if index == 0 || index > self.sent {
            return Answer::NeverSent;
        }
        match self.pending.remove(&index) {
            Some(sent_at) => Answer::First { sent_at },
            None => Answer::Duplicate,
        }
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Frames answered (first replies only).
    pub(crate) fn answered(&self) -> u64 {
        self.sent - self.pending.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_answers() {
        let mut l = Ledger::default();
        let t = Instant::now();
        assert_eq!(l.record_send(t), 1);
        assert_eq!(l.record_send(t), 2);
        assert_eq!(l.outstanding(), 2);
        assert_eq!(l.answer(1), Answer::First { sent_at: t });
        assert_eq!(l.answer(2), Answer::First { sent_at: t });
        assert_eq!((l.sent(), l.answered(), l.outstanding()), (2, 2, 0));
    }

    #[test]
    fn out_of_order_is_fine() {
        let mut l = Ledger::default();
        let t = Instant::now();
        for _ in 0..5 {
            l.record_send(t);
        }
        for i in [5, 4, 1, 3] {
            assert!(matches!(l.answer(i), Answer::First { .. }), "{i}");
        }
        assert_eq!(l.outstanding(), 1);
        assert_eq!(l.answered(), 4);
    }

    #[test]
    fn duplicates_and_unknown_indices() {
        let mut l = Ledger::default();
        let t = Instant::now();
        l.record_send(t);
        l.record_send(t);
        assert!(matches!(l.answer(2), Answer::First { .. }));
        assert_eq!(l.answer(2), Answer::Duplicate);
        assert_eq!(l.answer(0), Answer::NeverSent);
        assert_eq!(l.answer(3), Answer::NeverSent);
        // Neither kind of bad reply disturbs the outstanding set.
        assert_eq!(l.outstanding(), 1);
        assert!(matches!(l.answer(1), Answer::First { .. }));
        assert_eq!(l.answer(1), Answer::Duplicate);
    }

    #[test]
    fn send_times_are_kept_per_frame() {
        let mut l = Ledger::default();
        let a = Instant::now();
        let b = a + std::time::Duration::from_millis(5);
        l.record_send(a);
        l.record_send(b);
        assert_eq!(l.answer(2), Answer::First { sent_at: b });
        assert_eq!(l.answer(1), Answer::First { sent_at: a });
    }
}
