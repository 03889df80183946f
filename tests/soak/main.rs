//! The invariant under churn: many sessions, random abrupt disconnects,
//! reconnects. Every frame the server receives on an open connection is
//! answered exactly once (result, dropped or error), `stream_sessions_active`
//! returns to 0, and the process's memory returns to its baseline. The load
//! comes from the repository's load generator (examples/load-gen). A test
//! binary of its own, so no other test shares the process whose memory it
//! measures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use streamhost_load::{run, LoadReport, LoadSpec};
use streamhost_tests::*;

/// Resident set size of this process (server and clients), in MiB: `VmRSS`
/// from `/proc/self/status`, which the kernel gives in kB whatever the page size.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap_or_else(|| panic!("no VmRSS in kB in /proc/self/status:\n{status}"))
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

fn summary(r: &LoadReport) -> String {
    let c = &r.totals.counters;
    format!(
        "sent {} results {} dropped {} errors {} abandoned {} connections {} violations {}",
        c.frames_sent,
        c.results,
        c.dropped,
        c.errors,
        c.abandoned,
        c.connections_opened,
        r.violations()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_is_answered_once_under_churn_and_everything_returns_to_baseline() {
    let server = TestServer::start(&[
        ("frame_info", &shipped_pipeline("frame_info")),
        ("frame_stats", &shipped_pipeline("frame_stats")),
    ])
    .await;
    let frames = vec![
        Bytes::from(gradient_jpeg(320, 240)),
        Bytes::from(solid_jpeg(160, 120, [30, 90, 200])),
    ];
    let spec = |pipeline: &str, secs: u64, seed: u64| LoadSpec {
        url: format!("ws://{}", server.addr),
        pipeline: pipeline.into(),
        sessions: 40,
        fps: 25.0,
        duration: Duration::from_secs(secs),
        frames: frames.clone(),
        churn: Some(Duration::from_millis(400)),
        drain_timeout: Duration::from_secs(10),
        seed,
        ..LoadSpec::default()
    };
    // Warm-up, so allocator arenas and caches exist before the baseline.
    let warm = run(&spec("frame_info", 2, 1)).await.unwrap();
    assert_eq!(warm.violations(), 0, "{}", warm.render_table());
    server.wait_metric("stream_sessions_active", 0.0).await;
    let baseline = rss_mib();
    let (spec_a, spec_b) = (spec("frame_info", 8, 2), spec("frame_stats", 8, 3));
    let (a, b) = tokio::join!(run(&spec_a), run(&spec_b));
    for report in [a.unwrap(), b.unwrap()] {
        let c = &report.totals.counters;
        eprintln!("soak {}: {}", report.pipeline, summary(&report));
        assert_eq!(report.violations(), 0, "{}", report.render_table());
        // No fatal error excused any unanswered frame: with no violations,
        // every frame sent was answered, or was still unanswered when the
        // client itself cut the connection (abandoned).
        assert_eq!(c.fatal_errors, 0, "fatal errors: {}", report.render_table());
        assert!(c.results >= 100, "{}", summary(&report));
        assert!(
            c.connections_opened > 200,
            "too little churn: {}",
            summary(&report)
        );
        assert!(c.abrupt_disconnects > 100, "{}", summary(&report));
        assert_eq!(c.connections_refused, 0);
    }
    server.wait_metric("stream_sessions_active", 0.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_mib();
    eprintln!("rss: baseline {baseline:.1} MiB, after {after:.1} MiB");
    assert!(
        after <= baseline + 48.0,
        "memory grew from {baseline:.1} MiB to {after:.1} MiB"
    );
    assert_eq!(server.get_json("/health").await["status"], "ok");
}
