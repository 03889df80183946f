//! The run's report: per-session figures and totals, serialisable as JSON.

use std::time::Duration;

use serde::Serialize;

use crate::counts::Counters;
use crate::latency::{self, LatencySummary};
use crate::session::SessionStats;
use crate::spec::{LoadSpec, Mode};

/// One session's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub session: usize,
    /// Seconds spent connected and sending.
    pub active_s: f64,
    /// Frames sent per second of the run's sending window (`duration_s`).
    pub send_fps: f64,
    /// Results per second of the sending window.
    pub result_fps: f64,
    /// Send-to-reply latency of results.
    pub latency_ms: Option<LatencySummary>,
    pub violations_total: u64,
    /// Why the last failed connect failed (no HTTP answer), if one did.
    pub last_connect_error: Option<String>,
    #[serde(flatten)]
    pub counters: Counters,
}

/// All sessions together.
#[derive(Debug, Clone, Serialize)]
pub struct TotalsReport {
    /// Frames sent per second of the run's sending window, all sessions together.
    pub send_fps: f64,
    pub result_fps: f64,
    /// Percentiles over all sessions' samples, each weighted by the results it stands for.
    pub latency_ms: Option<LatencySummary>,
    pub violations_total: u64,
    #[serde(flatten)]
    pub counters: Counters,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The stream URL, `pipeline_id` included.
    pub url: String,
    pub pipeline: String,
    pub mode: Mode,
    pub sessions: usize,
    /// Target rate per session (0 unless paced).
    pub fps: f64,
    pub duration_s: f64,
    pub churn_ms: Option<u64>,
    pub drain_timeout_ms: u64,
    pub seed: u64,
    /// Wall time of the whole run, draining and closing included.
    pub elapsed_s: f64,
    /// No invariant violations.
    pub ok: bool,
    pub totals: TotalsReport,
    pub per_session: Vec<SessionReport>,
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl LoadReport {
    pub(crate) fn build(spec: &LoadSpec, elapsed: Duration, sessions: Vec<SessionStats>) -> Self {
        let mut totals = Counters::default();
        for s in &sessions {
            totals.merge(&s.counters);
        }
        let window = spec.duration.as_secs_f64();
        let total_latency =
            latency::summarize(&sessions.iter().map(|s| &s.latency).collect::<Vec<_>>());
        let per_session = sessions
            .into_iter()
            .map(|s| {
                let active_s = s.active.as_secs_f64();
                SessionReport {
                    session: s.index,
                    active_s,
                    send_fps: rate(s.counters.frames_sent, window),
                    result_fps: rate(s.counters.results, window),
                    latency_ms: s.latency.summary(),
                    violations_total: s.counters.violations.total(),
                    last_connect_error: s.last_connect_error,
                    counters: s.counters,
                }
            })
            .collect();
        let violations_total = totals.violations.total();
        Self {
            url: spec.stream_url(),
            pipeline: spec.pipeline.clone(),
            mode: spec.mode(),
            sessions: spec.sessions,
            fps: spec.fps,
            duration_s: window,
            churn_ms: spec.churn.map(millis),
            drain_timeout_ms: millis(spec.drain_timeout),
            seed: spec.seed,
            elapsed_s: elapsed.as_secs_f64(),
            ok: violations_total == 0,
            totals: TotalsReport {
                send_fps: rate(totals.frames_sent, window),
                result_fps: rate(totals.results, window),
                latency_ms: total_latency,
                violations_total,
                counters: totals,
            },
            per_session,
        }
    }

    /// Invariant violations over the whole run.
    pub fn violations(&self) -> u64 {
        self.totals.violations_total
    }

    /// A human-readable table: one row per session (the first 50),
    /// totals, and the breakdowns that are not empty.
    pub fn render_table(&self) -> String {
        crate::table::render(self)
    }
}
