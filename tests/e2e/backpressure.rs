//! Seed steps 8 and 9: dropping frames that arrive while one is in flight, and
//! the slow_down warning. The pipeline is slow for real (a Wasm node doing
//! ~0.3 s of work); nothing is patched.

use std::collections::BTreeMap;

use serde_json::Value;
use streamhost_tests::*;

const SLOW: u64 = 150_000_000;

/// Sends `n` frames back to back, then collects replies until each frame
/// index has one; returns (reply per frame index, warnings seen).
async fn burst(client: &mut Client, first_index: u64, n: u64) -> (BTreeMap<u64, Value>, usize) {
    let frame = solid_jpeg(16, 16, [7, 7, 7]);
    for _ in 0..n {
        client.send_frame(frame.clone()).await;
    }
    let mut replies = BTreeMap::new();
    let mut warnings = 0;
    while replies.len() < n as usize {
        let msg = client.recv_json().await;
        if msg.get("warning").is_some() {
            assert_eq!(msg, serde_json::json!({"warning":"slow_down"}));
            warnings += 1;
            continue;
        }
        let idx = msg["frame_index"].as_u64().unwrap();
        assert!(
            (first_index..first_index + n).contains(&idx),
            "unexpected {msg}"
        );
        assert!(
            replies.insert(idx, msg.clone()).is_none(),
            "frame {idx} answered twice: {msg}"
        );
    }
    (replies, warnings)
}

#[tokio::test]
async fn frames_arriving_while_one_is_in_flight_are_dropped_and_every_frame_is_answered_once() {
    let server = TestServer::start(&[("slow", &slow_pipeline("slow", SLOW))]).await;
    let mut client = server.connect("slow").await;
    let (replies, _) = burst(&mut client, 1, 6).await;
    assert!(
        replies[&1].get("result").is_some(),
        "first frame is processed: {:?}",
        replies[&1]
    );
    for i in 2..=6 {
        assert_eq!(
            replies[&i],
            serde_json::json!({"frame_index": i, "dropped": true})
        );
    }
    server
        .wait_metric(
            "stream_frames_dropped{pipeline=\"slow\",reason=\"busy\",tenant=\"default\"}",
            5.0,
        )
        .await;
    server
        .wait_metric(
            "stream_frames_processed{pipeline=\"slow\",tenant=\"default\"}",
            1.0,
        )
        .await;
    // Once the frame in flight is answered, the next frame is admitted again.
    let reply = client.roundtrip(solid_jpeg(16, 16, [7, 7, 7])).await;
    assert_eq!(reply["frame_index"], 7);
    assert!(reply.get("result").is_some(), "{reply}");
}

#[tokio::test]
async fn slow_down_is_sent_once_per_rise_above_the_threshold() {
    let server = TestServer::start_with(&[("slow", &slow_pipeline("slow", SLOW))], |c| {
        c.drop_window = 4;
        c.slowdown_threshold = 0.3;
    })
    .await;
    let mut client = server.connect("slow").await;
    // 1 admitted, 2..6 dropped: the window fills at frame 4 (3/4 dropped) -> one warning only.
    let (_, warnings) = burst(&mut client, 1, 6).await;
    assert_eq!(warnings, 1);
    // Paced frames are all admitted and bring the rate back to zero ...
    for i in 7..=10 {
        let reply = client.roundtrip(solid_jpeg(16, 16, [7, 7, 7])).await;
        assert_eq!(reply["frame_index"], i);
        assert!(reply.get("result").is_some(), "{reply}");
    }
    // ... so the next rise warns again.
    let (_, warnings) = burst(&mut client, 11, 6).await;
    assert_eq!(warnings, 1);
    server
        .wait_metric("stream_slowdown_signals{pipeline=\"slow\"}", 2.0)
        .await;
}

#[tokio::test]
async fn no_slow_down_for_a_client_that_waits_for_its_replies() {
    let server = TestServer::start_with(&[("slow", &slow_pipeline("slow", 5_000_000))], |c| {
        c.drop_window = 4;
    })
    .await;
    let mut client = server.connect("slow").await;
    for i in 1..=8 {
        let reply = client.roundtrip(solid_jpeg(16, 16, [7, 7, 7])).await;
        assert_eq!(reply["frame_index"], i, "{reply}");
        assert!(reply.get("result").is_some(), "{reply}");
    }
    assert_eq!(
        server
            .metric("stream_slowdown_signals{pipeline=\"slow\"}")
            .await,
        Some(0.0)
    );
}
