//! The sandbox: time limits, memory caps, traps, no ambient authority (also
//! through WASI 0.2, linked with nothing granted), and isolation between
//! sessions. Each misbehaving component is built from
//! source in `plugins/fixtures/`.

use std::time::{Duration, Instant};

use serde_json::json;
use streamhost_tests::*;

#[tokio::test]
async fn an_endless_loop_is_stopped_at_its_time_limit_while_other_sessions_keep_working() {
    let server = TestServer::start_with(
        &[
            ("spin", &wasm_pipeline("spin", "fixture_spin.wasm", "")),
            ("frame_info", &shipped_pipeline("frame_info")),
        ],
        |c| c.wasm_call_timeout = Duration::from_millis(1500),
    )
    .await;
    let mut spinner = server.connect("spin").await;
    let mut healthy = server.connect("frame_info").await;
    let started = Instant::now();
    spinner.send_frame(solid_jpeg(8, 8, [0, 0, 0])).await;
    // While the spinner burns its budget, the other session is served.
    for i in 1..=3 {
        let r = healthy.roundtrip(solid_jpeg(32, 32, [90, 90, 90])).await;
        assert_eq!(r["frame_index"], i, "{r}");
        assert_eq!(r["result"]["width"], 32, "{r}");
    }
    let reply = spinner.recv_json().await;
    let took = started.elapsed();
    assert_eq!(reply["error"], "pipeline_failure", "{reply}");
    assert!(
        reply["detail"].as_str().unwrap().contains("time limit"),
        "{reply}"
    );
    assert!(
        took >= Duration::from_millis(1400),
        "stopped early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "not stopped near its limit: {took:?}"
    );
    // The session survives and a fresh instance takes the next frame.
    spinner.send_frame(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(spinner.recv_json().await["frame_index"], 2);
}

#[tokio::test]
async fn a_memory_bomb_hits_the_cap_and_the_next_frame_gets_a_fresh_instance() {
    let server = TestServer::start_with(
        &[(
            "bomb",
            &wasm_pipeline("bomb", "fixture_alloc.wasm", "mb = 256"),
        )],
        |c| {
            c.wasm_memory_bytes = 32 << 20;
        },
    )
    .await;
    let mut client = server.connect("bomb").await;
    for i in 1..=2 {
        let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
        assert_eq!(reply["frame_index"], i, "{reply}");
        assert_eq!(reply["error"], "pipeline_failure", "{reply}");
        assert!(
            reply["detail"]
                .as_str()
                .unwrap()
                .contains("exceeded its 32 MiB memory cap"),
            "{reply}"
        );
    }
    let discarded = logs_where(
        "wasm instance discarded; the next frame gets a fresh one",
        &[("pipeline_id", json!("bomb"))],
    );
    assert!(discarded.len() >= 2, "{discarded:?}");
}

#[tokio::test]
async fn an_allocation_under_the_cap_succeeds() {
    let server = TestServer::start_with(
        &[(
            "small",
            &wasm_pipeline("small", "fixture_alloc.wasm", "mb = 8"),
        )],
        |c| {
            c.wasm_memory_bytes = 32 << 20;
        },
    )
    .await;
    let mut client = server.connect("small").await;
    let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert!(reply.get("result").is_some(), "{reply}");
}

#[tokio::test]
async fn components_see_no_filesystem_environment_or_network() {
    let server =
        TestServer::start(&[("snoop", &wasm_pipeline("snoop", "fixture_snoop.wasm", ""))]).await;
    let mut client = server.connect("snoop").await;
    let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    let r = &reply["result"];
    assert_eq!(r["root_dir"], "denied", "{reply}");
    assert_eq!(r["passwd"], "denied", "{reply}");
    assert_eq!(r["cwd_dir"], "denied", "{reply}");
    assert_eq!(r["env_vars"], 0, "{reply}");
    assert_eq!(r["args"], 0, "{reply}");
    assert_eq!(r["tcp"], "denied", "{reply}");
}

#[tokio::test]
async fn plugin_log_lines_reach_the_host_log_tagged_with_their_session() {
    let server = TestServer::start(&[(
        "plugin_log",
        &wasm_pipeline("plugin_log", "fixture_logger.wasm", ""),
    )])
    .await;
    let mut client = server.connect("plugin_log").await;
    let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(reply["result"]["logged"], 1, "{reply}");
    let line = logs_where_target("plugin", "plugin_log");
    assert!(
        line.iter().any(|l| l["node_id"] == "node"
            && l["message"].as_str().is_some_and(|m| m.contains("decode"))),
        "{line:?}"
    );
}

fn logs_where_target(target: &str, pipeline: &str) -> Vec<serde_json::Value> {
    log_lines()
        .into_iter()
        .filter(|l| l["target"] == target && l["pipeline_id"] == pipeline)
        .collect()
}

#[tokio::test]
async fn a_chatty_plugin_is_rate_limited_and_the_excess_is_summarised() {
    let server = TestServer::start_with(
        &[(
            "chatty",
            &wasm_pipeline("chatty", "fixture_logger.wasm", "lines = 50"),
        )],
        |c| c.plugin_log_lines_per_sec = 5,
    )
    .await;
    let mut client = server.connect("chatty").await;
    let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(reply["result"]["logged"], 50, "{reply}");
    let summary = wait_log(
        "plugin log lines over the rate limit were dropped",
        &[("pipeline_id", json!("chatty"))],
    )
    .await;
    assert_eq!(summary["suppressed"], 45, "{summary}");
    let kept = logs_where_target("plugin", "chatty")
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("fixture-logger"))
        })
        .count();
    assert_eq!(kept, 5);
}

#[tokio::test]
async fn deep_recursion_overflows_the_bounded_stack_as_a_frame_failure() {
    let server = TestServer::start_with(
        &[
            (
                "recurse",
                &wasm_pipeline("recurse", "fixture_recurse.wasm", ""),
            ),
            ("frame_info", &shipped_pipeline("frame_info")),
        ],
        |c| c.wasm_max_stack_bytes = 256 << 10,
    )
    .await;
    let mut attacker = server.connect("recurse").await;
    let mut neighbour = server.connect("frame_info").await;
    for i in 1..=2 {
        let r = attacker.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
        assert_eq!(r["frame_index"], i, "{r}");
        assert_eq!(r["error"], "pipeline_failure", "{r}");
        assert!(r["detail"].as_str().unwrap().contains("stack"), "{r}");
        neighbour.assert_serves(i).await;
    }
}

#[tokio::test]
async fn a_huge_output_is_refused_as_pipeline_failure() {
    let server = TestServer::start_with(
        &[
            (
                "huge",
                &wasm_pipeline("huge", "fixture_huge_output.wasm", "mb = 16"),
            ),
            ("frame_info", &shipped_pipeline("frame_info")),
        ],
        |c| c.wasm_memory_bytes = 64 << 20,
    )
    .await;
    let mut attacker = server.connect("huge").await;
    let mut neighbour = server.connect("frame_info").await;
    for i in 1..=3 {
        let r = attacker.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
        assert_eq!(r["error"], "pipeline_failure", "{r}");
        assert!(r["detail"].as_str().unwrap().contains("byte limit"), "{r}");
        neighbour.assert_serves(i).await;
    }
}

#[tokio::test]
async fn a_component_importing_outside_our_package_and_wasi_0_2_is_refused_at_load_by_name() {
    let server = TestServer::start(&[
        (
            "wants_wasi",
            &wasm_pipeline("wants_wasi", "fixture_wants_wasi.wasm", ""),
        ),
        ("frame_info", &shipped_pipeline("frame_info")),
    ])
    .await;
    let list = server.get_json("/pipelines").await;
    let p = find_pipeline(&list, "wants_wasi");
    assert_eq!(p["status"], "failed", "{p}");
    let reason = p["reason"].as_str().unwrap();
    // The fixture also imports WASI files and sockets, which are linked (granting nothing):
    // only the import nobody provides is named.
    assert!(reason.contains("fixture:wants-wasi/raw-net"), "{reason}");
    assert!(
        !reason.contains("wasi:filesystem") && !reason.contains("wasi:sockets"),
        "{reason}"
    );
    assert!(
        reason.contains("outside the streamhost:node world and WASI 0.2"),
        "{reason}"
    );
    let mut refused = server.connect("wants_wasi").await;
    let err = refused.recv_json().await;
    assert_eq!(err["error"], "invalid_pipeline", "{err}");
    let mut neighbour = server.connect("frame_info").await;
    neighbour.assert_serves(1).await;
}

/// The `wasm32-wasip2` fixture's attempts, against a listener it is told to connect to.
async fn wasi_attack(id: &str, lines: u64, lines_per_sec: u32) -> (serde_json::Value, bool) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = TestServer::start_with(
        &[(
            id,
            &wasm_pipeline(
                id,
                "fixture_wasi_attack.wasm",
                &format!("port = {port}, lines = {lines}"),
            ),
        )],
        |c| c.plugin_log_lines_per_sec = lines_per_sec,
    )
    .await;
    let mut client = server.connect(id).await;
    let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let connected = listener.accept().is_ok();
    // The instance survived every denial: the next frame is answered too.
    let again = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(again["frame_index"], 2, "{again}");
    assert!(again.get("result").is_some(), "{again}");
    (reply, connected)
}

#[tokio::test]
async fn a_wasi_component_gets_errors_for_files_environment_and_network_and_still_answers() {
    let (reply, connected) = wasi_attack("wasi_attack", 1, 100).await;
    assert_eq!(reply["frame_index"], 1, "{reply}");
    let r = &reply["result"];
    assert!(r.is_object(), "a denial must not trap: {reply}");
    for attempt in ["passwd", "root_dir", "tcp", "udp", "lookup"] {
        let got = r[attempt].as_str().unwrap_or_default();
        assert!(!got.is_empty() && got != "ok", "{attempt}: {reply}");
    }
    // No preopens: no path resolves. Sockets are refused outright.
    assert_eq!(r["passwd"], "NotFound", "{reply}");
    assert_eq!(r["root_dir"], "NotFound", "{reply}");
    assert_eq!(r["tcp"], "PermissionDenied", "{reply}");
    assert_eq!(r["udp"], "PermissionDenied", "{reply}");
    assert_eq!(r["env_vars"], 0, "{reply}");
    assert_eq!(r["args"], 0, "{reply}");
    assert_eq!(r["clock"], true, "{reply}");
    assert_eq!(r["random"], true, "{reply}");
    assert!(!connected, "the guest reached the test's listener");
}

#[tokio::test]
async fn wasi_stdout_and_stderr_lines_reach_the_log_tagged_and_rate_limited() {
    let started = Instant::now();
    let (reply, _) = wasi_attack("wasi_print", 20, 5).await;
    assert_eq!(reply["result"]["lines"], 20, "{reply}");
    let lines = logs_where_target("plugin", "wasi_print");
    let ours: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("fixture-wasi-attack"))
        })
        .collect();
    assert!(
        ours.iter()
            .all(|l| l["node_id"] == "node"
                && l["session_id"].as_str().is_some_and(|s| !s.is_empty())),
        "{ours:?}"
    );
    // 20 stdout lines, one stderr line and one partial line per frame, two frames, through
    // the same 5 lines a second as `log`: the first five lines of the first frame pass.
    let first = |m: &str| ours.iter().any(|l| l["message"] == m);
    assert!(first("fixture-wasi-attack stdout 0"), "{ours:?}");
    assert!(
        ours.iter()
            .all(|l| l["stream"] == "stdout" || l["stream"] == "stderr"),
        "{ours:?}"
    );
    assert!(
        ours.len() <= 5 + 5 * (started.elapsed().as_secs() as usize + 1),
        "not rate-limited: {}",
        ours.len()
    );
    let summary = wait_log(
        "plugin log lines over the rate limit were dropped",
        &[("pipeline_id", json!("wasi_print"))],
    )
    .await;
    assert!(summary["suppressed"].as_u64().unwrap() >= 10, "{summary}");
}

#[tokio::test]
async fn wasi_stderr_and_an_unterminated_line_are_logged_by_the_end_of_the_call() {
    let (reply, _) = wasi_attack("wasi_partial", 1, 100).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let lines = logs_where_target("plugin", "wasi_partial");
    let has = |message: &str, stream: &str| {
        lines
            .iter()
            .any(|l| l["message"] == message && l["stream"] == stream && l["node_id"] == "node")
    };
    assert!(has("fixture-wasi-attack stdout 0", "stdout"), "{lines:?}");
    assert!(has("fixture-wasi-attack stderr", "stderr"), "{lines:?}");
    assert!(has("fixture-wasi-attack partial", "stdout"), "{lines:?}");
}

#[tokio::test]
async fn a_python_component_gets_errors_for_files_environment_and_network_and_still_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // The default memory cap (64 MiB; it ran within 16 MiB too); a longer call limit than the
    // default 1 s (enough here) only as headroom for slow machines.
    let server = TestServer::start_with(
        &[(
            "py_attack",
            &wasm_pipeline(
                "py_attack",
                "py_wasi_attack.wasm",
                &format!("port = {port}"),
            ),
        )],
        |c| c.wasm_call_timeout = Duration::from_secs(10),
    )
    .await;
    let list = server.get_json("/pipelines").await;
    let p = find_pipeline(&list, "py_attack");
    assert_eq!(p["status"], "ready", "{p}");
    let mut client = server.connect("py_attack").await;
    for i in 1..=2 {
        let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
        assert_eq!(reply["frame_index"], i, "{reply}");
        let r = &reply["result"];
        assert!(r.is_object(), "a denial must not trap: {reply}");
        for attempt in ["passwd", "root_dir", "socket_module", "tcp", "lookup"] {
            let got = r[attempt].as_str().unwrap_or_default();
            assert!(!got.is_empty() && got != "ok", "{attempt}: {reply}");
        }
        assert_eq!(r["passwd"], "FileNotFoundError", "{reply}");
        assert_eq!(r["env_vars"], 0, "{reply}");
        // Through WASI's sockets API itself (CPython here has no socket module).
        // wasmtime-wasi answers a lookup it may not make with permanent-resolver-failure.
        assert_eq!(r["tcp"], "ErrorCode.ACCESS_DENIED", "{reply}");
        assert_eq!(
            r["lookup"], "ErrorCode.PERMANENT_RESOLVER_FAILURE",
            "{reply}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        listener.accept().is_err(),
        "the guest reached the test's listener"
    );
    let lines = logs_where_target("plugin", "py_attack");
    for (message, stream) in [
        ("py-wasi-attack stdout", "stdout"),
        ("py-wasi-attack stderr", "stderr"),
    ] {
        assert!(
            lines.iter().any(|l| l["message"] == message
                && l["stream"] == stream
                && l["node_id"] == "node"),
            "{lines:?}"
        );
    }
}
