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

#[tokio::test]
async fn while_draining_ready_is_503_new_upgrades_are_refused_and_the_session_finishes() {
    let mut server = TestServer::start(&[
        ("slow", &slow_pipeline("slow", 300_000_000)),
        ("frame_info", &shipped_pipeline("frame_info")),
    ])
    .await;
    let (status, body) = server.get("/ready").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    let mut client = server.connect("slow").await;
    client.send_frame(solid_jpeg(8, 8, [0, 0, 0])).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.begin_shutdown();
    // The frame in flight keeps the server draining; the listener stays open meanwhile.
    let mut saw_draining = false;
    for _ in 0..50 {
        let (status, body) = server.get("/ready").await;
        if status == 503 {
            assert_eq!(body, r#"{"status":"draining"}"#);
            saw_draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_draining, "/ready never answered 503 while draining");
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200, "liveness stays up while draining");
    let Err((status, body)) = server.try_connect("?pipeline_id=frame_info", &[]).await else {
        panic!("an upgrade while draining must be refused");
    };
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "too_many_sessions", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("shutting down"),
        "{body}"
    );
    // The open session gets its answer, then 1001, and the server exits.
    let reply = client.recv_json().await;
    assert_eq!(reply["frame_index"], 1, "{reply}");
    assert!(reply.get("result").is_some(), "{reply}");
    client.expect_close(1001).await;
    server.wait_stopped().await;
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn ready_names_the_pipelines_that_must_serve_and_do_not() {
    let broken = "id = \"broken\"\n[[nodes]]\nid = \"x\"\nkind = \"nope\"\n";
    let all = TestServer::start(&[
        ("frame_info", &shipped_pipeline("frame_info")),
        ("broken", broken),
    ])
    .await;
    let (status, body) = all.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        r#"{"pipelines_not_ready":["broken"],"status":"not_ready"}"#
    );
    let chosen = TestServer::start_with(
        &[
            ("frame_info", &shipped_pipeline("frame_info")),
            ("broken", broken),
        ],
        |c| c.ready_pipelines = Some(vec!["frame_info".into()]),
    )
    .await;
    assert_eq!(chosen.get("/ready").await.0, 200);
}
