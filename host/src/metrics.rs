//! Prometheus metrics, with the seed contract's exact names.
//!
//! Each server owns its own `Registry` (not the process-global default) so
//! that several servers in one test process keep separate counts. Labels are
//! only ever pipeline ids from loaded manifests, node ids, and error codes:
//! bounded sets. Nothing a client sends (an unknown pipeline id, say) becomes
//! a label, or a client could grow the registry without bound. Tenant ids
//! come from the operator's tenants file (or are `default`), so the `tenant`
//! label on frame counters and active sessions is bounded too. Reload counts
//! are labelled with the id a manifest file stands for (its declared id, or
//! the file's name when it never parsed): operator files again, and a
//! counter stays when its pipeline is removed, so the set grows only with
//! ids the operator has used.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::wire::{DropReason, ErrorCode};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    pub sessions_active: IntGauge,
    pub tenant_sessions_active: IntGaugeVec,
    pub connections_refused: IntCounter,
    pub admission_wait: HistogramVec,
    pub frames_processed: IntCounterVec,
    pub frames_dropped: IntCounterVec,
    pub slowdown_signals: IntCounterVec,
    pub errors: IntCounterVec,
    pub frame_latency: HistogramVec,
    pub node_latency: HistogramVec,
    /// Frames each node ran on or skipped (a conditional node whose `when`
    /// was false, or one whose input was skipped), by `outcome`
    /// (`ran`, `skipped`): how much work a pipeline that reuses saves.
    pub node_runs: IntCounterVec,
    /// Frames stopped before their end, by pipeline, tenant and reason
    /// (`deadline`, `session_closed`).
    pub frames_cut: IntCounterVec,
    /// Reloads by pipeline and outcome (`loaded`, `failed`, `removed`).
    pub pipeline_reloads: IntCounterVec,
    /// Tenants file reloads by outcome (`loaded`, `failed`).
    pub tenants_reloads: IntCounterVec,
    pub component_compilations: IntCounter,
    pub model_loads: IntCounter,
    /// 1 while a listed pipeline serves, 0 while it failed its load check.
    pub pipeline_ready: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let sessions_active = IntGauge::new(
            "stream_sessions_active",
            "WebSocket streaming sessions currently open",
        )?;
        let frames_processed = IntCounterVec::new(
            Opts::new(
                "stream_frames_processed",
                "Frames run through a pipeline and answered with a result",
            ),
            &["pipeline", "tenant"],
        )?;
        let frames_dropped = IntCounterVec::new(
            Opts::new(
                "stream_frames_dropped",
                "Frames dropped: reason busy (a frame already in flight) or rate_limited (fps quota)",
            ),
            &["pipeline", "tenant", "reason"],
        )?;
        let tenant_sessions_active = IntGaugeVec::new(
            Opts::new(
                "stream_tenant_sessions_active",
                "WebSocket streaming sessions currently open, by tenant",
            ),
            &["tenant"],
        )?;
        let connections_refused = IntCounter::new(
            "stream_connections_refused",
            "TCP connections closed on accept: STREAMHOST_MAX_CONNECTIONS open and none waiting for its request head, or STREAMHOST_MAX_PENDING_PER_ADDRESS waiting from its address",
        )?;
        let admission_wait = HistogramVec::new(
            HistogramOpts::new(
                "stream_admission_wait_seconds",
                "Time an admitted frame waited for a turn under STREAMHOST_MAX_FRAMES_IN_FLIGHT",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["tenant"],
        )?;
        let slowdown_signals = IntCounterVec::new(
            Opts::new(
                "stream_slowdown_signals",
                "slow_down warnings sent to clients",
            ),
            &["pipeline"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "stream_errors",
                "Error replies sent, by contract error code",
            ),
            &["code"],
        )?;
        let frame_latency = HistogramVec::new(
            HistogramOpts::new(
                "stream_frame_latency_seconds",
                "Time from a frame's arrival to its reply being queued",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["pipeline", "tenant"],
        )?;
        let node_latency = HistogramVec::new(
            HistogramOpts::new(
                "stream_node_latency_seconds",
                "Time one pipeline node took on one frame",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["pipeline", "node", "tenant"],
        )?;
        let node_runs = IntCounterVec::new(
            Opts::new(
                "stream_node_runs",
                "Frames a pipeline node ran on (outcome ran) or skipped (outcome skipped: its when condition was false or an input it needs was skipped)",
            ),
            &["pipeline", "node", "tenant", "outcome"],
        )?;
        registry.register(Box::new(node_runs.clone()))?;
        let frames_cut = IntCounterVec::new(
            Opts::new(
                "stream_frames_cut",
                "Frames stopped before their end: reason deadline (past STREAMHOST_FRAME_TIMEOUT_MS, answered pipeline_failure) or session_closed (abandoned at the next node)",
            ),
            &["pipeline", "tenant", "reason"],
        )?;
        registry.register(Box::new(frames_cut.clone()))?;
        let pipeline_reloads = IntCounterVec::new(
            Opts::new(
                "stream_pipeline_reloads",
                "Pipeline reloads while serving, by outcome: loaded (a new version serves), failed (the candidate failed its load check; any previous version keeps serving), removed",
            ),
            &["pipeline", "outcome"],
        )?;
        let tenants_reloads = IntCounterVec::new(
            Opts::new(
                "stream_tenants_reloads",
                "Tenants file reloads while serving, by outcome: loaded, failed (the previous file stays in force)",
            ),
            &["outcome"],
        )?;
        let component_compilations = IntCounter::new(
            "stream_component_compilations",
            "Wasm components compiled (at start and on reloads; a component whose bytes were compiled before is reused)",
        )?;
        registry.register(Box::new(pipeline_reloads.clone()))?;
        registry.register(Box::new(tenants_reloads.clone()))?;
        let model_loads = IntCounter::new(
            "stream_model_loads",
            "ONNX models opened (at start and on reloads; a model whose bytes were opened before is reused)",
        )?;
        registry.register(Box::new(component_compilations.clone()))?;
        registry.register(Box::new(model_loads.clone()))?;
        for outcome in ["loaded", "failed"] {
            tenants_reloads.with_label_values(&[outcome]);
        }
        let pipeline_ready = IntGaugeVec::new(
            Opts::new(
                "stream_pipeline_ready",
                "1 for each listed pipeline that serves, 0 for one that failed its load check",
            ),
            &["pipeline"],
        )?;
        registry.register(Box::new(pipeline_ready.clone()))?;
        registry.register(Box::new(sessions_active.clone()))?;
        registry.register(Box::new(frames_processed.clone()))?;
        registry.register(Box::new(frames_dropped.clone()))?;
        registry.register(Box::new(tenant_sessions_active.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(admission_wait.clone()))?;
        registry.register(Box::new(slowdown_signals.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(frame_latency.clone()))?;
        registry.register(Box::new(node_latency.clone()))?;
        // Error codes are known up front; show them at zero so dashboards see every series.
        for code in ErrorCode::ALL {
            errors.with_label_values(&[code.as_str()]);
        }
        Ok(Metrics {
            registry,
            sessions_active,
            tenant_sessions_active,
            connections_refused,
            admission_wait,
            frames_processed,
            frames_dropped,
            slowdown_signals,
            errors,
            frame_latency,
            node_latency,
            node_runs,
            frames_cut,
            pipeline_reloads,
            tenants_reloads,
            component_compilations,
            model_loads,
            pipeline_ready,
        })
    }

    /// Pre-creates a pipeline's series at zero for every tenant, so `/metrics`
    /// lists them before traffic.
    /// Whether `pipeline` serves (`Some(true)`), failed its load check
    /// (`Some(false)`) or is no longer listed (`None`: its series goes).
    pub fn set_pipeline_ready(&self, pipeline: &str, ready: Option<bool>) {
        match ready {
            Some(ready) => self
                .pipeline_ready
                .with_label_values(&[pipeline])
                .set(i64::from(ready)),
            None => {
                let _ = self.pipeline_ready.remove_label_values(&[pipeline]);
            }
        }
    }

    pub fn register_pipeline(&self, pipeline: &str, tenants: &[String]) {
        for tenant in tenants {
            self.frames_processed.with_label_values(&[pipeline, tenant]);
            for reason in DropReason::ALL {
                self.frames_dropped
                    .with_label_values(&[pipeline, tenant, reason.as_str()]);
            }
            self.tenant_sessions_active.with_label_values(&[tenant]);
            for reason in ["deadline", "session_closed"] {
                self.frames_cut
                    .with_label_values(&[pipeline, tenant, reason]);
            }
        }
        self.slowdown_signals.with_label_values(&[pipeline]);
    }

    /// The series one session of `pipeline` (nodes `node_ids`) for `tenant`
    /// writes, looked up once so that a frame costs no label hashing.
    pub fn session_series(&self, pipeline: &str, tenant: &str, node_ids: &[&str]) -> SessionSeries {
        SessionSeries {
            processed: self.frames_processed.with_label_values(&[pipeline, tenant]),
            dropped: DropReason::ALL.map(|r| {
                self.frames_dropped
                    .with_label_values(&[pipeline, tenant, r.as_str()])
            }),
            slowdowns: self.slowdown_signals.with_label_values(&[pipeline]),
            frame_latency: self.frame_latency.with_label_values(&[pipeline, tenant]),
            node_latency: node_ids
                .iter()
                .map(|node| {
                    self.node_latency
                        .with_label_values(&[pipeline, node, tenant])
                })
                .collect(),
            node_runs: node_ids
                .iter()
                .map(|node| {
                    ["ran", "skipped"].map(|o| {
                        self.node_runs
                            .with_label_values(&[pipeline, node, tenant, o])
                    })
                })
                .collect(),
            admission_wait: self.admission_wait.with_label_values(&[tenant]),
            deadline_exceeded: self
                .frames_cut
                .with_label_values(&[pipeline, tenant, "deadline"]),
            abandoned: self
                .frames_cut
                .with_label_values(&[pipeline, tenant, "session_closed"]),
        }
    }

    pub fn error(&self, code: ErrorCode) {
        self.errors.with_label_values(&[code.as_str()]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// One session's handles on its series (see [`Metrics::session_series`]).
pub struct SessionSeries {
    pub processed: IntCounter,
    /// Indexed like [`DropReason::ALL`].
    dropped: [IntCounter; 2],
    pub slowdowns: IntCounter,
    pub frame_latency: Histogram,
    /// Indexed like the plan's nodes.
    pub node_latency: Vec<Histogram>,
    /// Indexed like the plan's nodes: frames run, frames skipped.
    pub node_runs: Vec<[IntCounter; 2]>,
    pub admission_wait: Histogram,
    /// Frames failed at the deadline.
    pub deadline_exceeded: IntCounter,
    /// Frames abandoned because their session closed.
    pub abandoned: IntCounter,
}

impl SessionSeries {
    pub fn dropped(&self, why: DropReason) -> &IntCounter {
        match why {
            DropReason::Busy => &self.dropped[0],
            DropReason::RateLimited => &self.dropped[1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_series_write_the_labelled_series() {
        let m = match Metrics::new() {
            Ok(m) => m,
            Err(e) => return assert_eq!(e.to_string(), ""),
        };
        let s = m.session_series("p", "t", &["a", "b"]);
        s.processed.inc();
        s.dropped(DropReason::RateLimited).inc();
        s.dropped(DropReason::RateLimited).inc();
        s.dropped(DropReason::Busy).inc();
        s.node_latency[1].observe(0.5);
        s.node_runs[0][1].inc();
        assert_eq!(
            m.node_runs
                .with_label_values(&["p", "a", "t", "skipped"])
                .get(),
            1
        );
        assert_eq!(m.frames_processed.with_label_values(&["p", "t"]).get(), 1);
        let dropped = |r: &str| m.frames_dropped.with_label_values(&["p", "t", r]).get();
        assert_eq!((dropped("busy"), dropped("rate_limited")), (1, 2));
        let node = |n: &str| {
            m.node_latency
                .with_label_values(&["p", n, "t"])
                .get_sample_count()
        };
        assert_eq!((node("a"), node("b")), (0, 1));
    }

    #[test]
    fn exposes_the_contract_names() {
        let m = match Metrics::new() {
            Ok(m) => m,
            Err(e) => return assert_eq!(e.to_string(), ""),
        };
        m.register_pipeline("p", &["t".to_string()]);
        m.frames_processed.with_label_values(&["p", "t"]).inc();
        m.error(ErrorCode::InvalidFrame);
        let text = m.render();
        for name in [
            "stream_sessions_active",
            "stream_frames_processed",
            "stream_frames_dropped",
            "stream_slowdown_signals",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing from:\n{text}"
            );
        }
        assert!(text.contains("stream_frames_processed{pipeline=\"p\",tenant=\"t\"} 1"));
        assert!(text.contains(
            "stream_frames_dropped{pipeline=\"p\",reason=\"rate_limited\",tenant=\"t\"} 0"
        ));
        assert!(text.contains("stream_errors{code=\"invalid_frame\"} 1"));
        assert!(text.contains("stream_errors{code=\"pipeline_failure\"} 0"));
    }
}
