//! The load generator against in-process mock servers, some of which break the wire contract
//! on purpose: each breach must show up as the right violation, and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use streamhost_load::{LoadReport, LoadSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// What the mock does with the n-th frame (1-based) of a connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answer every frame with a result.
    Good,
    /// Answer frame 1 twice.
    Duplicate,
    /// Answer frame 1 with index 999 instead.
    UnknownIndex,
    /// Never answer frame 2.
    SkipSecond,
    /// Answer pairs in reverse order (2 before 1, 4 before 3, ...), drops with a reason.
    Reordered,
    /// After answering 2 frames, close while more are outstanding; with a fatal error first
    /// if `true`.
    CloseEarly(bool),
}

async fn mock(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp, behaviour));
        }
    });
    format!("ws://{addr}")
}

fn result(n: u64) -> Message {
    Message::text(format!(r#"{{"frame_index":{n},"result":{{"ok":true}}}}"#))
}

async fn serve(tcp: tokio::net::TcpStream, behaviour: Behaviour) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let mut n = 0u64;
    let mut held = None;
    while let Some(Ok(msg)) = ws.next().await {
        if !msg.is_binary() {
            continue;
        }
        n += 1;
        let replies = match behaviour {
            Behaviour::Good => vec![result(n)],
            Behaviour::Duplicate if n == 1 => vec![result(1), result(1)],
            Behaviour::UnknownIndex if n == 1 => vec![result(999)],
            Behaviour::SkipSecond if n == 2 => vec![],
            Behaviour::Reordered if n % 2 == 1 => {
                held = Some(n);
                vec![]
            }
            Behaviour::Reordered => {
                let mut r = vec![Message::text(format!(
                    r#"{{"frame_index":{n},"dropped":true,"reason":"busy"}}"#
                ))];
                r.extend(held.take().map(result));
                r
            }
            Behaviour::CloseEarly(fatal) if n == 3 => {
                if fatal {
                    let _ = ws
                        .send(Message::text(r#"{"error":"invalid_frame","detail":"x"}"#))
                        .await;
                }
                let _ = ws.close(None).await;
                return;
            }
            _ => vec![result(n)],
        };
        for r in replies {
            if ws.send(r).await.is_err() {
                return;
            }
        }
    }
}

fn spec(url: String, fps: f64) -> LoadSpec {
    LoadSpec {
        url,
        sessions: 2,
        fps,
        duration: Duration::from_millis(400),
        frames: vec![Bytes::from_static(b"\xff\xd8frame\xff\xd9")],
        drain_timeout: Duration::from_millis(300),
        ..LoadSpec::default()
    }
}

async fn run(behaviour: Behaviour, fps: f64) -> LoadReport {
    let url = mock(behaviour).await;
    streamhost_load::run(&spec(url, fps)).await.unwrap()
}

#[tokio::test]
async fn good_server_closed_loop_has_no_violations() {
    let r = run(Behaviour::Good, 0.0).await;
    let c = &r.totals.counters;
    assert!(r.ok, "{}", r.render_table());
    assert!(c.frames_sent > 10);
    assert_eq!(c.results, c.frames_sent);
    assert_eq!(c.connections_opened, 2);
    assert!(r.totals.latency_ms.is_some());
    assert_eq!(r.per_session.len(), 2);
}

#[tokio::test]
async fn good_server_flood_and_paced() {
    let mut s = spec(mock(Behaviour::Good).await, 0.0);
    s.flood = true;
    let r = streamhost_load::run(&s).await.unwrap();
    assert!(r.ok, "{}", r.render_table());
    assert_eq!(r.totals.counters.results, r.totals.counters.frames_sent);

    let r = run(Behaviour::Good, 50.0).await;
    assert!(r.ok, "{}", r.render_table());
    // 400 ms at 50 fps: about 20 frames per session (the first tick is immediate).
    for s in &r.per_session {
        assert!(
            (15..=23).contains(&s.counters.frames_sent),
            "{}",
            s.counters.frames_sent
        );
    }
}

#[tokio::test]
async fn duplicate_reply_is_a_violation() {
    let r = run(Behaviour::Duplicate, 0.0).await;
    assert_eq!(
        r.totals.counters.violations.duplicate,
        2,
        "{}",
        r.render_table()
    );
    assert_eq!(r.violations(), 2);
    assert!(!r.ok);
}

#[tokio::test]
async fn unknown_index_is_a_violation_and_the_frame_stays_unanswered() {
    let r = run(Behaviour::UnknownIndex, 0.0).await;
    let v = r.totals.counters.violations;
    assert_eq!(v.unknown_index, 2, "{}", r.render_table());
    // Closed loop waits on frame 1 until the deadline, then it is unanswered at the end.
    assert_eq!(v.unanswered_at_end, 2);
}

#[tokio::test]
async fn skipped_reply_is_unanswered_at_end() {
    let r = run(Behaviour::SkipSecond, 50.0).await;
    let v = r.totals.counters.violations;
    assert_eq!(v.unanswered_at_end, 2, "{}", r.render_table());
    assert_eq!(v.total(), 2);
}

#[tokio::test]
async fn reordered_replies_are_fine() {
    let r = run(Behaviour::Reordered, 50.0).await;
    let c = &r.totals.counters;
    let v = c.violations;
    // Out-of-order replies are no violation. The mock holds an odd frame until the next even
    // one arrives, so a session ending on an odd frame leaves it unanswered: at most one per
    // session (two sessions).
    assert_eq!(
        v.unknown_index + v.duplicate + v.unanswered_on_server_close,
        0,
        "{}",
        r.render_table()
    );
    assert!(v.unanswered_at_end <= 2, "{}", r.render_table());
    assert!(c.dropped > 0);
    assert_eq!(c.dropped_by_reason.get("busy"), c.dropped);
}

#[tokio::test]
async fn server_close_without_fatal_is_a_violation() {
    let mut s = spec(mock(Behaviour::CloseEarly(false)).await, 50.0);
    s.sessions = 1;
    let r = streamhost_load::run(&s).await.unwrap();
    let c = &r.totals.counters;
    assert!(c.closed_by_server >= 1, "{}", r.render_table());
    assert!(c.violations.unanswered_on_server_close >= 1);
    assert_eq!(c.unanswered_after_fatal, 0);
}

#[tokio::test]
async fn server_close_after_fatal_is_excused() {
    let mut s = spec(mock(Behaviour::CloseEarly(true)).await, 50.0);
    s.sessions = 1;
    let r = streamhost_load::run(&s).await.unwrap();
    let c = &r.totals.counters;
    assert!(c.closed_by_server >= 1, "{}", r.render_table());
    assert!(c.unanswered_after_fatal >= 1);
    assert_eq!(c.errors_by_code.get("invalid_frame"), c.fatal_errors);
    assert!(r.ok);
}

#[tokio::test]
async fn churn_abandons_instead_of_violating() {
    let mut s = spec(mock(Behaviour::Good).await, 200.0);
    s.duration = Duration::from_millis(800);
    s.churn = Some(Duration::from_millis(100));
    let r = streamhost_load::run(&s).await.unwrap();
    let c = &r.totals.counters;
    assert!(r.ok, "{}", r.render_table());
    assert!(c.abrupt_disconnects >= 4, "{}", r.render_table());
    assert!(c.connections_opened > c.abrupt_disconnects);
    assert_eq!(
        c.results + c.abandoned,
        c.frames_sent,
        "{}",
        r.render_table()
    );
}

#[tokio::test]
async fn http_refusal_is_counted_with_its_code() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let body = r#"{"error":"too_many_sessions","detail":"full"}"#;
                let head = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tcp.write_all(head.as_bytes()).await;
                let _ = tcp.write_all(body.as_bytes()).await;
            });
        }
    });
    let mut s = spec(format!("ws://{addr}"), 0.0);
    s.sessions = 1;
    let r = streamhost_load::run(&s).await.unwrap();
    let c = &r.totals.counters;
    assert!(c.connections_refused >= 1, "{}", r.render_table());
    assert_eq!(
        c.refused_by_code.get("too_many_sessions"),
        c.connections_refused
    );
    assert_eq!(c.connections_opened, 0);
}
