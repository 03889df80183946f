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
    assert_eq!(reply["result"]["logged"], true, "{reply}");
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
