//! Tenants: tokens on the upgrade (header, subprotocol, query), pipeline
//! allow-lists, session and fps quotas, Wasm quotas capping what a manifest
//! asks for, tenant metric labels, and tokens kept out of the logs.

use std::time::Duration;

use serde_json::{json, Value};
use streamhost::tenants::token_digest_hex;
use streamhost_tests::*;

const TOKEN_A: &str = "sh_tenant_a_4f1c9e0b7d2a";
const TOKEN_B: &str = "sh_tenant_b_93d0c11e8a5f";

fn tenants_file(dir: &std::path::Path) -> std::path::PathBuf {
    let text = format!(
        r#"
[[tenants]]
id = "acme"
token_sha256 = ["{a}"]
pipelines = ["frame_info", "bomb", "greedy"]
max_sessions = 2
max_fps = 5.0
wasm_memory_mb = 16

[[tenants]]
id = "globex"
token_sha256 = ["{b}"]
pipelines = ["*"]
"#,
        a = token_digest_hex(TOKEN_A),
        b = token_digest_hex(TOKEN_B)
    );
    let path = dir.join("tenants.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(dir: &tempfile::TempDir) -> TestServer {
    let path = tenants_file(dir.path());
    let greedy = wasm_pipeline("greedy", "fixture_alloc.wasm", "mb = 1")
        .replace("kind = \"wasm\"", "kind = \"wasm\"\nmemory_mb = 48");
    TestServer::start_with(
        &[
            ("frame_info", &shipped_pipeline("frame_info")),
            ("frame_stats", &shipped_pipeline("frame_stats")),
            (
                "bomb",
                &wasm_pipeline("bomb", "fixture_alloc.wasm", "mb = 24"),
            ),
            ("greedy", &greedy),
        ],
        |c| c.tenants_file = Some(path),
    )
    .await
}

fn frame() -> Vec<u8> {
    solid_jpeg(32, 24, [10, 200, 30])
}

/// Sends a frame and returns its answer, skipping `slow_down` warnings.
async fn answer(client: &mut Client) -> Value {
    client.send_frame(frame()).await;
    loop {
        let r = client.recv_json().await;
        if r.get("warning").is_none() {
            return r;
        }
    }
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_refused_with_401_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir).await;
    let (status, body) = server
        .try_connect("?pipeline_id=frame_info", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized", "{body}");
    let wrong = "sh_wrong_token_do_not_log_me";
    for headers in [
        vec![("authorization", format!("Bearer {wrong}"))],
        vec![(
            "sec-websocket-protocol",
            format!("streamhost, bearer.{wrong}"),
        )],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = server
            .try_connect("?pipeline_id=frame_info", &headers)
            .await
            .err()
            .unwrap();
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized"))
        );
    }
    let (status, _) = server
        .try_connect(
            &format!("?pipeline_id=frame_info&access_token={wrong}"),
            &[],
        )
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    server
        .wait_metric("stream_errors{code=\"unauthorized\"}", 4.0)
        .await;
    // A valid token's session logs too; neither token appears anywhere in the logs.
    let mut ok = server.connect_as(TOKEN_A, "frame_info").await;
    assert_eq!(ok.roundtrip(frame()).await["frame_index"], 1);
    let logs: String = log_lines().iter().map(Value::to_string).collect();
    assert!(logs.contains("connection refused: unauthorized"));
    assert!(!logs.contains(wrong), "a presented token was logged");
    assert!(!logs.contains(TOKEN_A), "a valid token was logged");
}

#[tokio::test]
async fn each_token_reaches_only_its_tenants_pipelines_by_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir).await;
    // Header route.
    let mut a = server.connect_as(TOKEN_A, "frame_info").await;
    let r = a.roundtrip(frame()).await;
    assert_eq!(r["result"]["width"], 32, "{r}");
    // Browser routes: the token as a subprotocol (the server picks "streamhost"), or a query parameter.
    let (mut b, protocol) = server
        .try_connect(
            "?pipeline_id=frame_stats",
            &[(
                "sec-websocket-protocol",
                &format!("streamhost, bearer.{TOKEN_B}"),
            )],
        )
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("streamhost"));
    assert_eq!(b.roundtrip(frame()).await["frame_index"], 1);
    let (mut q, _) = server
        .try_connect(
            &format!("?pipeline_id=frame_info&access_token={TOKEN_B}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(q.roundtrip(frame()).await["result"]["height"], 24);
    // Tenant A may not open frame_stats, which only B's list (via "*") covers: it reads as
    // a pipeline that does not exist (see the test below).
    let mut denied = server.connect_as(TOKEN_A, "frame_stats").await;
    let err = denied.recv_json().await;
    assert_eq!(err["error"], "invalid_pipeline", "{err}");
    denied.expect_close(1008).await;
    // Tenant labels in /metrics.
    server
        .wait_metric(
            "stream_frames_processed{pipeline=\"frame_info\",tenant=\"acme\"}",
            1.0,
        )
        .await;
    server
        .wait_metric(
            "stream_frames_processed{pipeline=\"frame_info\",tenant=\"globex\"}",
            1.0,
        )
        .await;
    server
        .wait_metric("stream_tenant_sessions_active{tenant=\"globex\"}", 2.0)
        .await;
}

#[tokio::test]
async fn session_quota_refuses_with_429_and_frees_on_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir).await;
    let first = server.connect_as(TOKEN_A, "frame_info").await;
    let _second = server.connect_as(TOKEN_A, "frame_info").await;
    server
        .wait_metric("stream_tenant_sessions_active{tenant=\"acme\"}", 2.0)
        .await;
    let auth = format!("Bearer {TOKEN_A}");
    let (status, body) = server
        .try_connect("?pipeline_id=frame_info", &[("authorization", &auth)])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 429);
    assert_eq!(body["error"], "too_many_sessions", "{body}");
    // Another tenant is unaffected.
    let mut other = server.connect_as(TOKEN_B, "frame_info").await;
    assert_eq!(other.roundtrip(frame()).await["frame_index"], 1);
    // A freed slot can be used again.
    first.close().await;
    server
        .wait_metric("stream_tenant_sessions_active{tenant=\"acme\"}", 1.0)
        .await;
    let mut again = server.connect_as(TOKEN_A, "frame_info").await;
    assert_eq!(again.roundtrip(frame()).await["frame_index"], 1);
}

#[tokio::test]
async fn the_fps_quota_drops_excess_frames_as_rate_limited_and_answers_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir).await;
    let mut a = server.connect_as(TOKEN_A, "frame_info").await;
    // 20 frames back to back, each waiting for its reply: far over 5 fps.
    let mut results = 0u64;
    let mut limited = 0;
    let started = std::time::Instant::now();
    for i in 1..=20u64 {
        let r = answer(&mut a).await;
        assert_eq!(r["frame_index"], i, "{r}");
        if r.get("result").is_some() {
            results += 1;
        } else {
            assert_eq!(
                r,
                json!({"frame_index": i, "dropped": true, "reason": "rate_limited"})
            );
            limited += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A burst of one second's worth (5), plus what refills (5 a second) while
    // the 20 round trips run, however long that took; one more for rounding.
    let most = 5 + (elapsed * 5.0).ceil() as u64 + 1;
    assert!(
        (5..=most).contains(&results),
        "results {results}, allowed 5..={most} in {elapsed:.2} s"
    );
    assert_eq!(results + limited, 20);
    server
        .wait_metric(
            "stream_frames_dropped{pipeline=\"frame_info\",reason=\"rate_limited\",tenant=\"acme\"}",
            limited as f64,
        )
        .await;
    // Paced under the quota, nothing is dropped.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let r = answer(&mut a).await;
        assert!(r.get("result").is_some(), "{r}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The other tenant has no fps quota.
    let mut b = server.connect_as(TOKEN_B, "frame_info").await;
    for _ in 0..10 {
        assert!(b.roundtrip(frame()).await.get("result").is_some());
    }
}

#[tokio::test]
async fn wasm_quotas_cap_instances_and_what_manifests_may_ask_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir).await;
    // 24 MiB fits the server's 64 MiB cap (globex) but not acme's 16 MiB quota.
    let mut b = server.connect_as(TOKEN_B, "bomb").await;
    let r = b.roundtrip(frame()).await;
    assert_eq!(r["result"]["mb"], 24, "{r}");
    let mut a = server.connect_as(TOKEN_A, "bomb").await;
    let r = a.roundtrip(frame()).await;
    assert_eq!(r["error"], "pipeline_failure", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("16 MiB"), "{r}");
    // A manifest asking for 48 MiB per instance is over acme's quota: refused at connect.
    let mut greedy = server.connect_as(TOKEN_A, "greedy").await;
    let err = greedy.recv_json().await;
    assert_eq!(err["error"], "forbidden", "{err}");
    assert!(err["detail"].as_str().unwrap().contains("48 MiB"), "{err}");
    greedy.expect_close(1008).await;
    // ...and fine for globex.
    let mut g = server.connect_as(TOKEN_B, "greedy").await;
    assert_eq!(g.roundtrip(frame()).await["result"]["mb"], 1);
}

#[tokio::test]
async fn a_bad_tenants_file_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.toml");
    std::fs::write(
        &path,
        "[[tenants]]\nid = \"x\"\ntoken_sha256 = [\"nothex\"]\npipelines = [\"*\"]\n",
    )
    .unwrap();
    let config = streamhost::Config {
        tenants_file: Some(path),
        pipelines_dir: dir.path().to_path_buf(),
        ..streamhost::Config::default()
    };
    let err = streamhost::AppState::build(config)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().unwrap_or("").contains("64 hex digits"),
        "{err:?}"
    );
}

#[tokio::test]
async fn another_tenants_pipeline_a_failed_one_and_none_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = tenants_file(dir.path());
    let broken = wasm_pipeline("broken", "no_such.wasm", "");
    let server = TestServer::start_with(
        &[
            ("frame_info", &shipped_pipeline("frame_info")),
            ("frame_stats", &shipped_pipeline("frame_stats")),
            ("broken", &broken),
        ],
        |c| c.tenants_file = Some(path),
    )
    .await;
    // Tenant A (acme) may use only frame_info, bomb and greedy.
    let mut replies = Vec::new();
    for id in ["frame_stats", "broken", "no_such_pipeline"] {
        let mut client = server.connect_as(TOKEN_A, id).await;
        let reply = client.recv_json().await;
        client.expect_close(1008).await;
        assert!(
            !reply.to_string().contains(id),
            "the detail echoes {id}: {reply}"
        );
        replies.push(reply.to_string());
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(replies[1], replies[2]);
    assert!(replies[0].contains("invalid_pipeline"), "{}", replies[0]);
    // The tenant that may use the failed pipeline is told why it failed, without server paths.
    let mut b = server.connect_as(TOKEN_B, "broken").await;
    let reply = b.recv_json().await;
    let detail = reply["detail"].as_str().unwrap();
    assert!(
        detail.contains("cannot read component no_such.wasm"),
        "{reply}"
    );
    assert!(!detail.contains('/'), "a path in {reply}");
}

#[tokio::test]
async fn pipelines_lists_only_the_tokens_pipelines_and_never_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = tenants_file(dir.path());
    let broken = wasm_pipeline("broken", "no_such.wasm", "");
    let server = TestServer::start_with(
        &[
            ("frame_info", &shipped_pipeline("frame_info")),
            ("broken", &broken),
        ],
        |c| {
            c.tenants_file = Some(path);
            c.metrics_token = Some("sh_metrics_7a1b".into());
        },
    )
    .await;
    let (status, body) = server.get("/pipelines").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"error\":\"unauthorized\""), "{body}");
    let listed = |token: &'static str| {
        let addr = server.addr;
        async move {
            let auth = format!("Bearer {token}");
            let r = http_request(addr, "GET", "/pipelines", &[("Authorization", &auth)], None)
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            let v: Value = serde_json::from_str(&r.body).unwrap();
            v["pipelines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["id"].as_str().unwrap().to_string(), p.clone()))
                .collect::<Vec<_>>()
        }
    };
    let a = listed(TOKEN_A).await;
    assert_eq!(
        a.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["frame_info"]
    );
    let b = listed(TOKEN_B).await;
    assert_eq!(
        b.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["broken", "frame_info"]
    );
    let reason = b[0].1["reason"].as_str().unwrap();
    assert!(
        reason.contains("no_such.wasm") && !reason.contains('/'),
        "{reason}"
    );
    // Probes stay open; /metrics wants its own token, not a tenant's.
    assert_eq!(server.get("/health").await.0, 200);
    assert_eq!(
        server.get("/ready").await.0,
        503,
        "broken must serve for /ready"
    );
    assert_eq!(server.get("/metrics").await.0, 401);
    let tenant = http_request(
        server.addr,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {TOKEN_B}"))],
        None,
    )
    .await
    .unwrap();
    assert_eq!(tenant.status, 401);
    let ok = http_request(
        server.addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer sh_metrics_7a1b")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("stream_sessions_active"));
}

/// Runs `sessions` closed-loop clients for `token` (each sends its next frame once the last is
/// answered) until `stop` is set, counting the results they get into `results`.
fn closed_loop(
    server: &TestServer,
    token: &'static str,
    sessions: usize,
    results: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use std::sync::atomic::Ordering;
    (0..sessions)
        .map(|_| {
            let url = server.ws_url("?pipeline_id=slow");
            let (results, stop) = (results.clone(), stop.clone());
            tokio::spawn(async move {
                use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                let mut req = url.into_client_request().unwrap();
                req.headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
                let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
                let mut client = Client { ws };
                while !stop.load(Ordering::Relaxed) {
                    let reply = client.roundtrip(frame()).await;
                    if reply.get("result").is_some() {
                        results.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn under_overload_each_tenant_gets_its_share_whatever_its_sessions() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = tenants_file(dir.path());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("max_sessions = 2\n", "max_sessions = 8\n")
        .replace(
            "pipelines = [\"frame_info\", \"bomb\", \"greedy\"]",
            "pipelines = [\"slow\"]",
        )
        .replace("max_fps = 5.0\n", "");
    std::fs::write(&path, text).unwrap();
    // One frame slot; every frame takes a few tens of ms.
    let server = TestServer::start_with(&[("slow", &slow_pipeline("slow", 20_000_000))], |c| {
        c.tenants_file = Some(path);
        c.max_frames_in_flight = 1;
    })
    .await;
    let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = closed_loop(&server, TOKEN_A, 8, a.clone(), stop.clone());
    tasks.extend(closed_loop(&server, TOKEN_B, 1, b.clone(), stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while a.load(Ordering::Relaxed) + b.load(Ordering::Relaxed) < 60 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "too few frames answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (na, nb) = (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
    for task in tasks {
        task.await.unwrap();
    }
    // Per-session turns would give the one-session tenant 1/9 of the frames; per-tenant turns
    // give it half.
    let share = nb as f64 / (na + nb) as f64;
    assert!(
        share > 0.4,
        "tenant with 1 session got {nb} of {} frames",
        na + nb
    );
    // Per-frame metrics carry the tenant (a frame admitted as the clients stopped may add one).
    let waited = server
        .metric("stream_admission_wait_seconds_count{tenant=\"globex\"}")
        .await
        .unwrap();
    assert!(waited >= nb as f64, "{waited} < {nb}");
}
