//! Seed steps 1 and 4: connecting, and the session's lifecycle.

use std::time::Duration;

use serde_json::json;
use streamhost_tests::*;

#[tokio::test]
async fn a_valid_pipeline_connects_and_sends_nothing_unsolicited() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let mut client = server.connect("frame_info").await;
    // The seed's client reads the reply to its first frame as the first message.
    assert_eq!(client.recv_within(Duration::from_millis(300)).await, None);
    let reply = client.roundtrip(solid_jpeg(32, 16, [10, 10, 10])).await;
    assert_eq!(reply["frame_index"], 1);
    assert!(reply["result"].is_object(), "{reply}");
}

#[tokio::test]
async fn missing_pipeline_id_is_invalid_pipeline_then_close() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let mut client = server.connect_url(&server.ws_url("")).await;
    assert_eq!(
        client.recv_json().await,
        json!({"error":"invalid_pipeline","detail":"Missing pipeline_id"})
    );
    client.expect_close(1008).await;
}

#[tokio::test]
async fn unknown_pipeline_id_is_invalid_pipeline_then_close() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let mut client = server.connect("nope").await;
    assert_eq!(
        client.recv_json().await,
        json!({"error":"invalid_pipeline","detail":"Unknown pipeline_id (GET /pipelines lists the pipelines this client may use)"})
    );
    client.expect_close(1008).await;
    // Refused connects are not sessions.
    assert_eq!(server.metric("stream_sessions_active").await, Some(0.0));
}

#[tokio::test]
async fn sessions_are_created_on_connect_and_destroyed_on_disconnect() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let mut a = server.connect("frame_info").await;
    let mut b = server.connect("frame_info").await;
    a.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    b.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    server.wait_metric("stream_sessions_active", 2.0).await;
    a.close().await;
    server.wait_metric("stream_sessions_active", 1.0).await;
    // A client vanishing without a close frame ends its session too.
    drop(b);
    server.wait_metric("stream_sessions_active", 0.0).await;
    // Each session numbers its own frames from 1: state does not outlive a connection.
    let mut c = server.connect("frame_info").await;
    assert_eq!(
        c.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await["frame_index"],
        1
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout_and_pinged_before() {
    let server = TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.idle_timeout = Duration::from_secs(2);
        c.ping_interval = Duration::from_millis(300);
    })
    .await;
    // A client that answers pings (tungstenite does so while it reads) stays.
    let mut live = server.connect("frame_info").await;
    assert_eq!(
        live.recv_within(Duration::from_millis(2500)).await,
        None,
        "pong kept it alive"
    );
    assert_eq!(
        live.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await["frame_index"],
        1
    );
    drop(live);

    // A raw TCP peer that upgrades and then says nothing is closed by the idle timeout.
    let mut silent = server.raw_upgrade("frame_info").await;
    use tokio::io::AsyncReadExt;
    server.wait_metric("stream_sessions_active", 1.0).await;
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // Read until the server closes the TCP connection (after its close frame).
    let _ = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buf)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed too early"
    );
    assert!(
        buf.windows(12).any(|w| w == b"idle timeout"),
        "no close frame with the reason"
    );
    server.wait_metric("stream_sessions_active", 0.0).await;
}
