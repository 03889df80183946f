//! The sandbox: time limits, memory caps, traps, no ambient authority, and
//! isolation between sessions. Each misbehaving component is built from
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
async fn a_component_importing_wasi_files_or_sockets_is_refused_at_load_by_name() {
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
    // The fixture imports both; the host names every offending import.
    assert!(
        reason.contains("wasi:filesystem") && reason.contains("wasi:sockets"),
        "{reason}"
    );
    assert!(
        reason.contains("outside the streamhost:node world"),
        "{reason}"
    );
    let mut refused = server.connect("wants_wasi").await;
    let err = refused.recv_json().await;
    assert_eq!(err["error"], "invalid_pipeline", "{err}");
    let mut neighbour = server.connect("frame_info").await;
    neighbour.assert_serves(1).await;
}
