//! The slow-down signal: a drop rate measured over a sliding window of the
//! session's most recent frames, with hysteresis.
//!
//! The drop decision itself is structural (a session has at most one frame in
//! its pipeline; a frame arriving while one runs is dropped) and lives in the
//! WebSocket handler. This module only decides when to tell the client to
//! slow down. The window is the last `STREAM_DROP_WINDOW` frames (default 20);
//! the rate is judged once the window is full, so one unlucky early frame does
//! not trigger a warning. `{"warning":"slow_down"}` is sent when the rate
//! rises above `STREAM_SLOWDOWN_THRESHOLD`, and not again until it has fallen
//! back to or below the threshold and then risen above it once more.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct SlowdownDetector {
    window: VecDeque<bool>,
    capacity: usize,
    drops_in_window: usize,
    threshold: f64,
    signalled: bool,
}

impl SlowdownDetector {
    pub fn new(window: usize, threshold: f64) -> Self {
        let capacity = window.max(1);
        SlowdownDetector {
            window: VecDeque::with_capacity(capacity),
            capacity,
            drops_in_window: 0,
            threshold,
            signalled: false,
        }
    }

    /// Records one received frame (dropped or admitted); returns true when a
    /// `slow_down` warning should be sent now.
    pub fn record(&mut self, dropped: bool) -> bool {
        if self.window.len() == self.capacity && self.window.pop_front() == Some(true) {
            self.drops_in_window -= 1;
        }
        self.window.push_back(dropped);
        if dropped {
            self.drops_in_window += 1;
        }
        if self.window.len() < self.capacity {
            return false;
        }
        let above = self.drop_rate() > self.threshold;
        let fire = above && !self.signalled;
        self.signalled = above;
        fire
    }

    /// Drops over frames in the window (0 when empty).
    pub fn drop_rate(&self) -> f64 {
        if self.window.is_empty() {
            0.0
        } else {
            self.drops_in_window as f64 / self.window.len() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_warning_until_the_window_is_full() {
        let mut d = SlowdownDetector::new(4, 0.3);
        assert!(!d.record(true));
        assert!(!d.record(true));
        assert!(!d.record(true));
        assert!(
            d.record(true),
            "fires once the window holds 4 frames, all dropped"
        );
    }

    #[test]
    fn fires_once_then_again_only_after_falling_below() {
        let mut d = SlowdownDetector::new(4, 0.3);
        let fired: Vec<bool> = [false, true, true, false, true, true, true]
            .into_iter()
            .map(|dropped| d.record(dropped))
            .collect();
        assert_eq!(fired.iter().filter(|f| **f).count(), 1, "{fired:?}");
        // Recover: four admitted frames bring the rate to 0.
        for _ in 0..4 {
            assert!(!d.record(false));
        }
        assert_eq!(d.drop_rate(), 0.0);
        let again: Vec<bool> = (0..4).map(|_| d.record(true)).collect();
        assert_eq!(again.iter().filter(|f| **f).count(), 1, "{again:?}");
    }

    #[test]
    fn rate_at_the_threshold_does_not_fire() {
        let mut d = SlowdownDetector::new(10, 0.3);
        let pattern = [
            false, false, false, false, false, false, false, true, true, true,
        ];
        assert!(pattern.iter().all(|p| !d.record(*p)));
        assert!((d.drop_rate() - 0.3).abs() < 1e-12);
        assert!(d.record(true), "4/10 > 0.3");
    }
}
