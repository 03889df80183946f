//! One session: connect, run a connection, and reconnect (after a churn cut at once, after a
//! refusal or a server close after a short pause) until the run's deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::conn::{self, ConnEnd, ConnPlan};
use crate::connect::{self, Connected};
use crate::counts::Counters;
use crate::latency::{self, Reservoir};
use crate::rng::SplitMix64;
use crate::spec::{LoadSpec, Mode};

/// Pause before reconnecting after a refusal, a failed connect or a server close.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

/// The parts of a [`LoadSpec`] every session shares, prepared once.
#[derive(Debug)]
pub(crate) struct SessionPlan {
    url: String,
    auth: Option<HeaderValue>,
    frames: Vec<Bytes>,
    mode: Mode,
    interval: Option<Duration>,
    churn: Option<Duration>,
    drain_timeout: Duration,
    window: usize,
    /// Latency samples each session keeps: its share of the run's budget.
    reservoir_cap: usize,
    seed: u64,
}

impl SessionPlan {
    /// From a spec that passed [`LoadSpec::validate`].
    pub(crate) fn from_spec(spec: &LoadSpec) -> Self {
        Self {
            url: spec.stream_url(),
            auth: spec.auth_header().ok().flatten(),
            frames: spec.frames.clone(),
            mode: spec.mode(),
            interval: spec.interval(),
            churn: spec.churn,
            drain_timeout: spec.drain_timeout,
            window: spec.window,
            reservoir_cap: latency::reservoir_cap(spec.sessions),
            seed: spec.seed,
        }
    }
}

/// What one session measured.
#[derive(Debug)]
pub(crate) struct SessionStats {
    pub(crate) index: usize,
    pub(crate) counters: Counters,
    pub(crate) latency: Reservoir,
    /// Time spent sending (connected, before each connection's end).
    pub(crate) active: Duration,
    pub(crate) last_connect_error: Option<String>,
}

pub(crate) async fn run(index: usize, plan: Arc<SessionPlan>, deadline: Instant) -> SessionStats {
    let stream = index as u64 * 2;
    let mut rng = SplitMix64::derive(plan.seed, stream);
    let mut stats = SessionStats {
        index,
        counters: Counters::default(),
        latency: Reservoir::new(
            plan.reservoir_cap,
            SplitMix64::derive(plan.seed, stream + 1).next_u64(),
        ),
        active: Duration::ZERO,
        last_connect_error: None,
    };
    while Instant::now() < deadline {
        match connect::connect(&plan.url, plan.auth.as_ref()).await {
            Connected::Open(ws) => {
                stats.counters.connections_opened += 1;
                let now = Instant::now();
                let cut_at = plan
                    .churn
                    .map(|churn| now + churn.mul_f64(0.5 + rng.unit()))
                    .filter(|&at| at < deadline);
                let conn_plan = ConnPlan {
                    frames: &plan.frames,
                    first_frame: index as u64 + stats.counters.frames_sent,
                    mode: plan.mode,
                    interval: plan.interval,
                    end_at: cut_at.unwrap_or(deadline),
                    abrupt: cut_at.is_some(),
                    reset: cut_at.is_some() && rng.below(2) == 0,
                    drain_timeout: plan.drain_timeout,
                    window: plan.window,
                };
                if conn::run(*ws, &conn_plan, &mut stats).await == ConnEnd::ServerClosed {
                    backoff(deadline).await;
                }
            }
            Connected::Refused { code } => {
                stats.counters.connections_refused += 1;
                stats.counters.refused_by_code.add(&code, 1);
                backoff(deadline).await;
            }
            Connected::Failed(reason) => {
                stats.counters.connect_failures += 1;
                stats.last_connect_error = Some(reason);
                backoff(deadline).await;
            }
        }
    }
    stats
}

async fn backoff(deadline: Instant) {
    sleep_until((Instant::now() + RECONNECT_BACKOFF).min(deadline)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::{MIN_RESERVOIR_CAP, RESERVOIR_CAP};
    use crate::spec::MAX_SESSIONS;

    fn plan(sessions: usize) -> SessionPlan {
        SessionPlan::from_spec(&LoadSpec {
            sessions,
            frames: vec![Bytes::from_static(b"\xff\xd8\xff\xd9")],
            ..LoadSpec::default()
        })
    }

    #[test]
    fn sessions_share_the_run_sample_budget() {
        assert_eq!(plan(1).reservoir_cap, RESERVOIR_CAP);
        assert_eq!(plan(400).reservoir_cap, 5_000);
        assert_eq!(plan(MAX_SESSIONS).reservoir_cap, MIN_RESERVOIR_CAP);
        // A session's reservoir never holds more than the plan's cap.
        let mut r = Reservoir::new(plan(MAX_SESSIONS).reservoir_cap, 1);
        for i in 0..5_000 {
            r.record(f64::from(i));
        }
        assert_eq!(
            r.summary().map(|s| (s.count, s.samples)),
            Some((5_000, MIN_RESERVOIR_CAP))
        );
    }
}
