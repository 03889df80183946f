//! Graceful shutdown: stop accepting, answer the frame in flight, close with 1001.

use std::time::Duration;

use streamhost_tests::*;

#[tokio::test]
async fn the_frame_in_flight_is_answered_before_the_session_closes() {
    let mut server = TestServer::start(&[("slow", &slow_pipeline("slow", 100_000_000))]).await;
    let mut client = server.connect("slow").await;
    client.send_frame(solid_jpeg(8, 8, [0, 0, 0])).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.begin_shutdown();
    let reply = client.recv_json().await;
    assert_eq!(reply["frame_index"], 1);
    assert!(reply.get("result").is_some(), "{reply}");
    client.expect_close(1001).await;
    server.wait_stopped().await;
    assert_eq!(server.state.metrics.sessions_active.get(), 0);
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn a_frame_outlasting_the_grace_period_gets_internal_error() {
    let mut server =
        TestServer::start_with(&[("slow", &slow_pipeline("slow", 400_000_000))], |c| {
            c.shutdown_grace = Duration::from_millis(50);
        })
        .await;
    let mut client = server.connect("slow").await;
    client.send_frame(solid_jpeg(8, 8, [0, 0, 0])).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.begin_shutdown();
    let reply = client.recv_json().await;
    assert_eq!(reply["frame_index"], 1, "{reply}");
    assert_eq!(reply["error"], "internal_error", "{reply}");
    client.expect_close(1001).await;
    server.wait_stopped().await;
}
