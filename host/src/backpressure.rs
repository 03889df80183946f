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
//!
//! [`FrameRate`] is the other reason to drop: a session's frames-per-second
//! quota, a token bucket checked before any work is done on the frame.

use std::collections::VecDeque;
use std::time::Instant;

/// A frames-per-second quota: a token bucket refilled at `fps` a second,
/// holding at most one second's worth (at least one frame), so a client
/// pacing at the quota with ordinary jitter is never dropped, and one that
/// sends faster is dropped down to the quota instead of queued.
#[derive(Debug, Clone)]
pub struct FrameRate {
    fps: f64,
    burst: f64,
    tokens: f64,
    refilled: Option<Instant>,
}

impl FrameRate {
    pub fn new(fps: f64) -> Self {
        let burst = fps.max(1.0);
        FrameRate {
            fps,
            burst,
            tokens: burst,
            refilled: None,
        }
    }

    /// Whether a frame arriving at `now` is within the quota (and spends it).
    pub fn admit(&mut self, now: Instant) -> bool {
        if let Some(last) = self.refilled {
            let earned = now.saturating_duration_since(last).as_secs_f64() * self.fps;
            self.tokens = (self.tokens + earned).min(self.burst);
        }
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

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
    use std::time::Duration;

    #[test]
    fn the_fps_quota_admits_its_rate_and_drops_the_excess() {
        let mut r = FrameRate::new(10.0);
        let t0 = Instant::now();
        // A burst of 30 frames at once: one second's worth (10) gets through.
        let burst = (0..30).filter(|_| r.admit(t0)).count();
        assert_eq!(burst, 10);
        // Then 40 frames/s for two seconds: about 10/s are admitted.
        let admitted = (1..=80)
            .filter(|i| r.admit(t0 + Duration::from_millis(25 * i)))
            .count();
        assert!((19..=21).contains(&admitted), "{admitted}");
        // Pacing exactly at the quota is never dropped.
        let mut r = FrameRate::new(5.0);
        assert!((0..50).all(|i| r.admit(t0 + Duration::from_millis(200 * i))));
    }

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
