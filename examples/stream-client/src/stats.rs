//! Latency percentiles over the frames that got a result.
//!
//! Nearest-rank percentiles on the sorted samples: the reported value is always one that was
//! actually measured, which is what a reader of a benchmark summary expects, and it needs no
//! interpolation policy. With few samples, p99 is simply the maximum.
//!
//! This is deliberately not the load generator's weighted rank (`latency::weighted_rank`): with
//! unit weights it is the same in exact arithmetic, but it rounds differently in floating point
//! (p7 of 100 samples is the 8th here and the 7th there, as `0.07 * 100` exceeds 7), and for a
//! NaN `p` this picks the first sample where that picks the last.

use std::time::Duration;

/// Summary of a set of latency samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentile `p` (0..=100) of an ascending slice; `None` when it is empty.
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // rank = ceil(p/100 * n), clamped to 1..=n (a NaN `p` casts to 0 and lands on the first).
    let rank = (p / 100.0 * n as f64).ceil().clamp(1.0, n as f64) as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// Percentiles of the given latencies; `None` when there are none.
pub fn percentiles(samples: &[Duration]) -> Option<Percentiles> {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    Some(Percentiles {
        count: ms.len(),
        p50: nearest_rank(&ms, 50.0)?,
        p90: nearest_rank(&ms, 90.0)?,
        p99: nearest_rank(&ms, 99.0)?,
        max: *ms.last()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_percentiles() {
        assert_eq!(nearest_rank(&[], 50.0), None);
        assert_eq!(percentiles(&[]), None);
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let p = percentiles(&[Duration::from_millis(12)]);
        assert_eq!(
            p,
            Some(Percentiles {
                count: 1,
                p50: 12.0,
                p90: 12.0,
                p99: 12.0,
                max: 12.0
            })
        );
    }

    #[test]
    fn one_to_hundred() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(&samples);
        assert_eq!(
            p,
            Some(Percentiles {
                count: 100,
                p50: 50.0,
                p90: 90.0,
                p99: 99.0,
                max: 100.0
            })
        );
    }

    #[test]
    fn unsorted_input_is_sorted_first() {
        let samples: Vec<Duration> = [5, 1, 4, 2, 3].map(Duration::from_millis).to_vec();
        let p = percentiles(&samples);
        assert_eq!(p.map(|p| (p.p50, p.max)), Some((3.0, 5.0)));
    }

    #[test]
    fn nearest_rank_edges() {
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(nearest_rank(&v, 0.0), Some(10.0));
        assert_eq!(nearest_rank(&v, 25.0), Some(10.0));
        assert_eq!(nearest_rank(&v, 26.0), Some(20.0));
        assert_eq!(nearest_rank(&v, 100.0), Some(40.0));
        assert_eq!(nearest_rank(&v, 150.0), Some(40.0));
    }

    #[test]
    fn rank_is_ceil_of_p_over_100_times_n_in_floating_point() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        // 7.0 / 100.0 * 100.0 is 7.000000000000001, so the rank is 8.
        assert_eq!(nearest_rank(&v, 7.0), Some(8.0));
        assert_eq!(nearest_rank(&v, f64::NAN), Some(1.0));
    }

    #[test]
    fn sub_millisecond_precision_is_kept() {
        let p = percentiles(&[Duration::from_micros(1500)]);
        assert_eq!(p.map(|p| p.max), Some(1.5));
    }
}
