//! A node written in JavaScript (`plugins/ocr-flags/app.js`, built by
//! componentize-js from source by the build script), in the shipped
//! `ocr_flags` pipeline: it loads in the same sandbox as the Rust nodes,
//! answers frames, and refuses a bad config at load with its own reason.

use serde_json::{json, Value};
use streamhost_tests::*;

fn frame(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test]
async fn the_javascript_node_flags_the_lines_matching_its_patterns() {
    let shipped = shipped_pipeline("ocr_flags");
    // The same component with a config the node itself rejects (an invalid regex):
    // init fails, so the pipeline fails its load check naming the node and why.
    let bad = shipped
        .replace(r#"id = "ocr_flags""#, r#"id = "bad_flags""#)
        .replace(
            r#"config = { patterns = {"#,
            r#"config = { patterns = { broken = "([unclosed", "#,
        );
    assert!(
        bad.contains("broken"),
        "the ocr_flags manifest changed shape"
    );
    let server = TestServer::start(&[("ocr_flags", &shipped), ("bad_flags", &bad)]).await;

    let mut client = server.connect("ocr_flags").await;
    let reply = client
        .roundtrip(frame("../examples/frames/frame.jpg"))
        .await;
    let result = &reply["result"];
    let texts: Vec<&str> = result["text"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["HELLO WORLD 2024", "yolo_ocr frame 17", "ABC-123"],
        "{reply}"
    );
    assert_eq!(
        result["flags"],
        json!([{"pattern": "code", "match": "ABC-123", "line": 2}]),
        "{reply}"
    );
    let reply = client.roundtrip(frame("golden/f008.jpg")).await;
    let flags = reply["result"]["flags"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"));
    assert!(
        flags.contains(&json!({"pattern": "price", "match": "$18.40", "line": 0})),
        "{reply}"
    );

    let listing = server.get_json("/pipelines").await;
    let entry = find_pipeline(&listing, "bad_flags");
    assert_eq!(entry["status"], "failed", "{entry}");
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("node 'flags'") && reason.contains("pattern 'broken' is not a valid regex"),
        "{reason}"
    );
    let mut refused = server.connect("bad_flags").await;
    let reply: Value = refused.recv_json().await;
    assert_eq!(reply["error"], "invalid_pipeline", "{reply}");
}
