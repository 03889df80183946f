//! Seed step 10: the error contract. Every failure reaches the client as
//! `{error, detail}`; per-frame failures carry `frame_index` and keep the
//! session open.

use std::time::Duration;

use streamhost_tests::*;

#[tokio::test]
async fn a_node_failure_is_pipeline_failure_naming_the_node_and_the_session_goes_on() {
    let server =
        TestServer::start(&[("trap", &wasm_pipeline("trap", "fixture_trap.wasm", ""))]).await;
    let mut client = server.connect("trap").await;
    for i in 1..=2 {
        let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
        assert_eq!(reply["frame_index"], i, "{reply}");
        assert_eq!(reply["error"], "pipeline_failure", "{reply}");
        let detail = reply["detail"].as_str().unwrap();
        assert!(detail.starts_with("node 'node' trapped"), "{detail}");
    }
    server
        .wait_metric("stream_errors{code=\"pipeline_failure\"}", 2.0)
        .await;
    // Still open: nothing closed it.
    assert_eq!(client.recv_within(Duration::from_millis(200)).await, None);
}

#[tokio::test]
async fn a_node_refusing_its_input_is_pipeline_failure() {
    // A wrong kind on an edge is refused at load now (tests/e2e/kinds.rs), so
    // the input has the right kind and the wrong content: ocr_assemble takes
    // JSON, but the boxes and the lines, not a merge result.
    let manifest = "id = \"misfed\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n\
        [[nodes]]\nid = \"m\"\nkind = \"wasm\"\ncomponent = \"merge.wasm\"\ninputs = [\"decode\"]\n\
        [[nodes]]\nid = \"info\"\nkind = \"wasm\"\ncomponent = \"ocr_assemble.wasm\"\ninputs = [\"m\"]\n";
    let server = TestServer::start(&[("misfed", manifest)]).await;
    let mut client = server.connect("misfed").await;
    let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(reply["error"], "pipeline_failure", "{reply}");
    assert!(
        reply["detail"]
            .as_str()
            .unwrap()
            .starts_with("node 'info' rejected its input"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_result_over_the_size_limit_is_pipeline_failure() {
    let server = TestServer::start_with(&[("frame_info", &shipped_pipeline("frame_info"))], |c| {
        c.max_result_bytes = 16;
    })
    .await;
    let mut client = server.connect("frame_info").await;
    let reply = client.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(reply["error"], "pipeline_failure", "{reply}");
    assert!(
        reply["detail"]
            .as_str()
            .unwrap()
            .contains("over the 16 byte limit"),
        "{reply}"
    );
}
