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
        json!({"error":"invalid_pipeline","detail":"Unknown pipeline_id 'nope'"})
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
