//! Seed steps 5 and 6: receiving frames, and validating them.

use serde_json::json;
use streamhost_tests::*;

async fn server() -> TestServer {
    TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await
}

#[tokio::test]
async fn binary_frames_are_answered_in_order_with_increasing_frame_index() {
    let server = server().await;
    let mut client = server.connect("frame_info").await;
    for i in 1..=3 {
        let reply = client.roundtrip(solid_jpeg(16, 16, [50, 50, 50])).await;
        assert_eq!(reply["frame_index"], i, "{reply}");
        assert!(reply.get("result").is_some(), "{reply}");
    }
}

#[tokio::test]
async fn a_text_message_is_invalid_message_then_close() {
    let server = server().await;
    let mut client = server.connect("frame_info").await;
    client.send_text("hello").await;
    let reply = client.recv_json().await;
    assert_eq!(reply["error"], "invalid_message");
    assert!(reply["detail"].as_str().is_some_and(|d| !d.is_empty()));
    client.expect_close(1003).await;
}

#[tokio::test]
async fn bytes_without_jpeg_markers_are_invalid_frame_then_close() {
    let server = server().await;
    let mut client = server.connect("frame_info").await;
    client.send_frame(b"not-a-jpeg".to_vec()).await;
    assert_eq!(
        client.recv_json().await,
        json!({"error":"invalid_frame","detail":"Not a valid JPEG image"})
    );
    client.expect_close(1007).await;
}

#[tokio::test]
async fn a_six_megabyte_frame_is_frame_too_large_not_a_protocol_close() {
    let server = server().await;
    let mut client = server.connect("frame_info").await;
    // The seed demo's synthetic frame: valid markers, 6 MiB of filler.
    let mut big = vec![0xFF, 0xD8];
    big.extend(std::iter::repeat_n(b'0', 6 * 1024 * 1024));
    big.extend([0xFF, 0xD9]);
    client.send_frame(big).await;
    assert_eq!(
        client.recv_json().await,
        json!({"error":"frame_too_large","detail":"Frame exceeds 5MB"})
    );
    client.expect_close(1009).await;
}

#[tokio::test]
async fn the_frame_limit_follows_the_environment_setting() {
    let server = TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.max_frame_bytes = 1 << 20;
    })
    .await;
    let mut client = server.connect("frame_info").await;
    let mut big = vec![0xFF, 0xD8];
    big.extend(std::iter::repeat_n(0u8, (1 << 20) + 10));
    big.extend([0xFF, 0xD9]);
    client.send_frame(big).await;
    assert_eq!(
        client.recv_json().await,
        json!({"error":"frame_too_large","detail":"Frame exceeds 1MB"})
    );
}

#[tokio::test]
async fn a_corrupt_jpeg_with_valid_markers_is_invalid_frame_for_that_frame() {
    let server = server().await;
    let mut client = server.connect("frame_info").await;
    client.roundtrip(solid_jpeg(16, 16, [1, 2, 3])).await;
    client
        .send_frame(b"\xFF\xD8\xFF\xE0garbage-that-is-no-jpeg\xFF\xD9".to_vec())
        .await;
    let reply = client.recv_json().await;
    assert_eq!(reply["frame_index"], 2, "{reply}");
    assert_eq!(reply["error"], "invalid_frame", "{reply}");
    assert!(
        reply["detail"]
            .as_str()
            .unwrap()
            .starts_with("Not a valid JPEG image"),
        "{reply}"
    );
    client.expect_close(1007).await;
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header() {
    let server = TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.max_frame_pixels = 100 * 100;
    })
    .await;
    let mut client = server.connect("frame_info").await;
    client.send_frame(solid_jpeg(200, 100, [9, 9, 9])).await;
    let reply = client.recv_json().await;
    assert_eq!(reply["error"], "invalid_frame", "{reply}");
    assert!(
        reply["detail"].as_str().unwrap().contains("200x100"),
        "{reply}"
    );
}
