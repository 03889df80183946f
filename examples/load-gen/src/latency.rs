//! Result latencies: a bounded reservoir per session and nearest-rank percentiles.
//!
//! The whole run shares a budget of [`RUN_SAMPLE_BUDGET`] samples: each session's reservoir holds
//! [`reservoir_cap`]`(sessions)` of them, between [`MIN_RESERVOIR_CAP`] and [`RESERVOIR_CAP`].
//! Up to its cap a session's percentiles are exact; beyond it the reservoir
//! holds a uniform random sample (Vitter's algorithm R) and `max` stays exact. Totals merge the
//! sessions' reservoirs with each sample weighted by how many results it stands for, so a
//! sampled session counts as much as its real traffic. Percentiles are nearest-rank: the value
//! reported is one that was actually measured.

use serde::Serialize;

use crate::rng::SplitMix64;

/// Most latency samples kept per session.
pub(crate) const RESERVOIR_CAP: usize = 100_000;
/// Fewest latency samples kept per session, however many sessions share the budget.
pub(crate) const MIN_RESERVOIR_CAP: usize = 1_000;
/// Latency samples the whole run aims to keep, shared out evenly between its sessions.
pub(crate) const RUN_SAMPLE_BUDGET: usize = 2_000_000;

/// Per-session reservoir size for a run of `sessions` sessions: an even share of
/// [`RUN_SAMPLE_BUDGET`], within [`MIN_RESERVOIR_CAP`]..=[`RESERVOIR_CAP`].
pub(crate) fn reservoir_cap(sessions: usize) -> usize {
    (RUN_SAMPLE_BUDGET / sessions.max(1)).clamp(MIN_RESERVOIR_CAP, RESERVOIR_CAP)
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Results measured.
    pub count: u64,
    /// Samples the percentiles were computed from (at most the reservoir size per session).
    pub samples: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Reservoir {
    cap: usize,
    seen: u64,
    max: f64,
    samples: Vec<f64>,
    rng: SplitMix64,
}

impl Reservoir {
    pub(crate) fn new(cap: usize, seed: u64) -> Self {
        Self {
            cap,
            seen: 0,
            max: 0.0,
            samples: Vec::new(),
            rng: SplitMix64::new(seed),
        }
    }

    pub(crate) fn record(&mut self, ms: f64) {
        self.seen += 1;
        self.max = self.max.max(ms);
        if self.samples.len() < self.cap {
            self.samples.push(ms);
        } else {
            let j = self.rng.below(self.seen);
            if let Some(slot) = usize::try_from(j)
                .ok()
                .and_then(|j| self.samples.get_mut(j))
            {
                *slot = ms;
            }
        }
    }

    pub(crate) fn summary(&self) -> Option<LatencySummary> {
        summarize(&[self])
    }
}

/// Weighted nearest-rank percentiles over several reservoirs; `None` when all are empty.
pub(crate) fn summarize(parts: &[&Reservoir]) -> Option<LatencySummary> {
    let mut weighted: Vec<(f64, f64)> = Vec::new();
    let mut count = 0;
    let mut max = f64::NEG_INFINITY;
    for r in parts.iter().filter(|r| !r.samples.is_empty()) {
        let weight = r.seen as f64 / r.samples.len() as f64;
        weighted.extend(r.samples.iter().map(|&v| (v, weight)));
        count += r.seen;
        max = max.max(r.max);
    }
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(LatencySummary {
        count,
        samples: weighted.len(),
        p50: weighted_rank(&weighted, 50.0)?,
        p90: weighted_rank(&weighted, 90.0)?,
        p99: weighted_rank(&weighted, 99.0)?,
        max,
    })
}

/// Nearest-rank percentile `p` of `(value, weight)` pairs sorted by value: the first value
/// whose cumulative weight reaches `p`% of the total. With unit weights this is the classic
/// rank `ceil(p/100 * n)`.
pub(crate) fn weighted_rank(sorted: &[(f64, f64)], p: f64) -> Option<f64> {
    let total: f64 = sorted.iter().map(|&(_, w)| w).sum();
    let target = p.clamp(0.0, 100.0) * total / 100.0;
    let mut cumulative = 0.0;
    for &(value, weight) in sorted {
        cumulative += weight;
        if cumulative >= target {
            return Some(value);
        }
    }
    sorted.last().map(|&(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f64]) -> Vec<(f64, f64)> {
        values.iter().map(|&v| (v, 1.0)).collect()
    }

    #[test]
    fn nearest_rank_with_unit_weights() {
        let v = unit(&[10.0, 20.0, 30.0, 40.0]);
        assert_eq!(weighted_rank(&v, 0.0), Some(10.0));
        assert_eq!(weighted_rank(&v, 25.0), Some(10.0));
        assert_eq!(weighted_rank(&v, 26.0), Some(20.0));
        assert_eq!(weighted_rank(&v, 50.0), Some(20.0));
        assert_eq!(weighted_rank(&v, 100.0), Some(40.0));
        assert_eq!(weighted_rank(&[], 50.0), None);
    }

    #[test]
    fn the_run_budget_shrinks_the_per_session_cap() {
        assert_eq!(reservoir_cap(0), RESERVOIR_CAP);
        assert_eq!(reservoir_cap(1), RESERVOIR_CAP);
        assert_eq!(reservoir_cap(20), RESERVOIR_CAP);
        assert_eq!(reservoir_cap(40), 50_000);
        assert_eq!(reservoir_cap(200), 10_000);
        assert_eq!(reservoir_cap(2_000), MIN_RESERVOIR_CAP);
        assert_eq!(reservoir_cap(crate::spec::MAX_SESSIONS), MIN_RESERVOIR_CAP);
        // Many sessions keep the run within its budget (until the per-session floor).
        for sessions in [1, 20, 21, 40, 333, 1_000, 2_000] {
            assert!(
                sessions * reservoir_cap(sessions) <= RUN_SAMPLE_BUDGET,
                "{sessions}"
            );
        }
    }

    #[test]
    fn one_to_hundred() {
        let mut r = Reservoir::new(1000, 0);
        for ms in (1..=100).rev() {
            r.record(f64::from(ms));
        }
        assert_eq!(
            r.summary(),
            Some(LatencySummary {
                count: 100,
                samples: 100,
                p50: 50.0,
                p90: 90.0,
                p99: 99.0,
                max: 100.0
            })
        );
    }

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(Reservoir::new(10, 0).summary(), None);
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn reservoir_is_bounded_and_keeps_exact_max() {
        let mut r = Reservoir::new(100, 3);
        for i in 0..100_000 {
            r.record(f64::from(i % 1000));
        }
        r.record(5000.0);
        let s = r.summary();
        assert_eq!(
            s.map(|s| (s.count, s.samples, s.max)),
            Some((100_001, 100, 5000.0))
        );
        // A uniform sample of 0..1000 has its median near 500.
        let p50 = s.map_or(0.0, |s| s.p50);
        assert!((300.0..700.0).contains(&p50), "p50 {p50}");
    }

    #[test]
    fn merge_weights_by_traffic() {
        // Session a: 1000 results of 1 ms sampled down to 10; session b: 10 results of 100 ms.
        let mut a = Reservoir::new(10, 1);
        for _ in 0..1000 {
            a.record(1.0);
        }
        let mut b = Reservoir::new(10, 2);
        for _ in 0..10 {
            b.record(100.0);
        }
        let s = summarize(&[&a, &b]);
        // b is ~1% of the traffic: p50 and p90 are a's, p99 sits at the boundary, max is b's.
        assert_eq!(
            s.map(|s| (s.count, s.samples, s.p50, s.p90, s.max)),
            Some((1010, 20, 1.0, 1.0, 100.0))
        );
    }

    #[test]
    fn merge_of_unsampled_sessions_is_exact() {
        let mut a = Reservoir::new(100, 1);
        let mut b = Reservoir::new(100, 2);
        for ms in 1..=50 {
            a.record(f64::from(ms));
            b.record(f64::from(ms + 50));
        }
        let s = summarize(&[&a, &b]);
        assert_eq!(
            s.map(|s| (s.p50, s.p90, s.p99, s.max)),
            Some((50.0, 90.0, 99.0, 100.0))
        );
    }
}
