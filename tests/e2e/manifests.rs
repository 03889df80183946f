//! Load-time checks: a pipeline that fails any check is listed with its reason
//! and refuses connects with `invalid_pipeline` and that reason, while the
//! good pipelines keep serving.

use serde_json::json;
use streamhost_tests::*;

#[tokio::test]
async fn failed_pipelines_are_listed_with_reasons_and_refuse_connects() {
    let cycle = "id = \"cycle\"\n[[nodes]]\nid = \"a\"\nkind = \"wasm\"\ncomponent = \"merge.wasm\"\ninputs = [\"b\"]\n\
        [[nodes]]\nid = \"b\"\nkind = \"wasm\"\ncomponent = \"merge.wasm\"\ninputs = [\"a\"]\n";
    let unknown_kind = "id = \"unknown_kind\"\n[[nodes]]\nid = \"m\"\nkind = \"tensorflow\"\n";
    let server = TestServer::start(&[
        ("frame_info", &shipped_pipeline("frame_info")),
        (
            "bad_exports",
            &wasm_pipeline("bad_exports", "fixture_bad_exports.wasm", ""),
        ),
        (
            "missing",
            &wasm_pipeline("missing", "no_such_plugin.wasm", ""),
        ),
        (
            "bad_config",
            &wasm_pipeline("bad_config", "motion.wasm", "threshold = 5.0"),
        ),
        ("cycle", cycle),
        ("unknown_kind", unknown_kind),
        ("broken", "this is [ not toml"),
    ])
    .await;
    let list = server.get_json("/pipelines").await;
    let ready = find_pipeline(&list, "frame_info");
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["nodes"][0],
        json!({"id":"decode","kind":"jpeg_decode","inputs":["frame"],"takes":["frame"],"gives":["image"]})
    );
    let info = &ready["nodes"][1];
    assert_eq!(
        (&info["id"], &info["kind"], &info["inputs"]),
        (&json!("info"), &json!("wasm"), &json!(["decode"]))
    );

    let expectations = [
        ("bad_exports", "does not export streamhost:node/node@0.2.0"),
        ("missing", "cannot read component"),
        ("bad_config", "node 'node' rejected its config"),
        ("cycle", "cycle"),
        ("unknown_kind", "unknown kind 'tensorflow'"),
        ("broken", "not valid TOML"),
    ];
    for (id, reason) in expectations {
        let p = find_pipeline(&list, id);
        assert_eq!(p["status"], "failed", "{p}");
        assert!(p["reason"].as_str().unwrap().contains(reason), "{id}: {p}");
        let mut client = server.connect(id).await;
        let reply = client.recv_json().await;
        assert_eq!(reply["error"], "invalid_pipeline", "{reply}");
        assert!(
            reply["detail"].as_str().unwrap().contains(reason),
            "{id}: {reply}"
        );
        client.expect_close(1008).await;
    }

    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["pipelines"], 7);
    assert_eq!(health["pipelines_ready"], 1);

    // The good pipeline is unaffected.
    let mut client = server.connect("frame_info").await;
    assert!(client
        .roundtrip(solid_jpeg(8, 8, [0, 0, 0]))
        .await
        .get("result")
        .is_some());
}

#[tokio::test]
async fn health_reports_version_and_pipeline_count() {
    let server = TestServer::start(&[
        ("frame_info", &shipped_pipeline("frame_info")),
        ("frame_stats", &shipped_pipeline("frame_stats")),
    ])
    .await;
    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["pipelines"], 2);
}

#[tokio::test]
async fn every_shipped_manifest_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    let mut shipped = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            shipped.push((stem, std::fs::read_to_string(&path).unwrap()));
        }
    }
    let refs: Vec<(&str, &str)> = shipped
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let server = TestServer::start(&refs).await;
    let list = server.get_json("/pipelines").await;
    for p in list["pipelines"].as_array().unwrap() {
        assert_eq!(p["status"], "ready", "{p}");
    }
}
