//! Seed step 11: JSON logs and Prometheus metrics, read back as an operator
//! would: the server's own JSON layer captured in memory, and `/metrics` over HTTP.

use serde_json::json;
use streamhost_tests::*;

#[tokio::test]
async fn connect_drop_slowdown_error_and_disconnect_are_logged_with_ids() {
    let slow = slow_pipeline("obs_logs", 150_000_000);
    let server = TestServer::start_with(&[("obs_logs", &slow)], |c| c.drop_window = 2).await;
    let mut client = server.connect("obs_logs").await;
    let frame = solid_jpeg(8, 8, [0, 0, 0]);
    for _ in 0..3 {
        client.send_frame(frame.clone()).await;
    }
    // 3 replies and one slow_down warning (window of 2: frames 2 and 3 dropped).
    for _ in 0..4 {
        client.recv_json().await;
    }
    client.send_text("bye").await;
    client.recv_json().await;
    client.expect_close(1003).await;

    let p = ("pipeline_id", json!("obs_logs"));
    let connect = wait_log("session connected", std::slice::from_ref(&p)).await;
    let session = connect["session_id"].clone();
    assert!(session.is_string(), "{connect}");
    let s = ("session_id", session);
    wait_log(
        "frame dropped",
        &[p.clone(), s.clone(), ("frame_index", json!(2))],
    )
    .await;
    wait_log("slow_down sent", &[p.clone(), s.clone()]).await;
    let err = wait_log("session closed on error", &[p.clone(), s.clone()]).await;
    assert_eq!(err["error"], "invalid_message");
    assert_eq!(err["level"], "WARN");
    let bye = wait_log("session disconnected", &[p, s]).await;
    assert_eq!(
        (
            bye["frames"].as_u64(),
            bye["dropped"].as_u64(),
            bye["processed"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{bye}"
    );
}

#[tokio::test]
async fn counters_and_latency_histograms_follow_the_traffic() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let (_, before) = server.get("/metrics").await;
    for name in [
        "stream_sessions_active",
        "stream_frames_processed",
        "stream_frames_dropped",
        "stream_slowdown_signals",
    ] {
        assert!(
            before.contains(&format!("# TYPE {name} ")),
            "{name} missing"
        );
    }
    let mut client = server.connect("frame_info").await;
    for _ in 0..3 {
        client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    }
    client.send_frame(b"nope".to_vec()).await;
    client.recv_json().await;
    server
        .wait_metric(
            "stream_frames_processed{pipeline=\"frame_info\",tenant=\"default\"}",
            3.0,
        )
        .await;
    server
        .wait_metric("stream_errors{code=\"invalid_frame\"}", 1.0)
        .await;
    server
        .wait_metric(
            "stream_frame_latency_seconds_count{pipeline=\"frame_info\"}",
            3.0,
        )
        .await;
    server
        .wait_metric(
            "stream_node_latency_seconds_count{node=\"info\",pipeline=\"frame_info\"}",
            3.0,
        )
        .await;
    server
        .wait_metric(
            "stream_node_latency_seconds_count{node=\"decode\",pipeline=\"frame_info\"}",
            3.0,
        )
        .await;
    server.wait_metric("stream_sessions_active", 0.0).await;
}

#[tokio::test]
async fn unknown_pipeline_ids_never_become_metric_labels() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    for i in 0..5 {
        let mut c = server.connect(&format!("attacker_{i}")).await;
        c.recv_json().await;
    }
    let (_, body) = server.get("/metrics").await;
    assert!(
        !body.contains("attacker_"),
        "client-chosen ids leaked into labels"
    );
    server
        .wait_metric("stream_errors{code=\"invalid_pipeline\"}", 5.0)
        .await;
}

#[tokio::test]
async fn a_flood_of_drops_is_logged_as_one_line_and_a_summary() {
    let slow = slow_pipeline("obs_flood", 300_000_000);
    let server = TestServer::start_with(&[("obs_flood", &slow)], |c| {
        c.drop_log_interval = std::time::Duration::from_secs(3600);
        c.drop_window = 10_000;
    })
    .await;
    let mut client = server.connect("obs_flood").await;
    let frame = solid_jpeg(8, 8, [0, 0, 0]);
    for _ in 0..60 {
        client.send_frame(frame.clone()).await;
    }
    let mut dropped = 0;
    let mut last_dropped = 0;
    for _ in 0..60 {
        let reply = client.recv_json().await;
        if reply["dropped"] == true {
            dropped += 1;
            last_dropped = reply["frame_index"].as_u64().unwrap();
        }
    }
    assert!(dropped >= 50, "the flood was not dropped: {dropped}");
    client.close().await;
    let p = ("pipeline_id", json!("obs_flood"));
    let connect = wait_log("session connected", std::slice::from_ref(&p)).await;
    let s = ("session_id", connect["session_id"].clone());
    let bye = wait_log("session disconnected", &[p.clone(), s.clone()]).await;
    assert_eq!(bye["dropped"].as_u64(), Some(dropped), "{bye}");
    // One line for the first drop, one summary (flushed at the end) for the rest.
    let singles = logs_where("frame dropped", &[p.clone(), s.clone()]);
    assert_eq!(singles.len(), 1, "{singles:?}");
    let summaries = logs_where("frames dropped", &[p, s]);
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let summary = &summaries[0];
    assert_eq!(summary["busy"].as_u64(), Some(dropped - 1), "{summary}");
    assert_eq!(summary["rate_limited"].as_u64(), Some(0), "{summary}");
    assert_eq!(
        summary["last_frame_index"].as_u64(),
        Some(last_dropped),
        "{summary}"
    );
}
