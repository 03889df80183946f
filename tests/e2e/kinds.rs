//! Typed edges and the 0.2.0 node contract, on a real server: every edge is
//! checked at load against what each node declares (native kinds in code, a
//! 0.2.0 component through `describe`, a manifest narrowing either), a
//! mis-wired pipeline fails naming both nodes and both kinds, a 0.1.0
//! component still loads and runs (unchecked unless narrowed), and a 0.2.0
//! node is told its frame's context and passes u8 and s64 tensors along.

use serde_json::{json, Value};
use streamhost_tests::*;

fn node<'a>(pipeline: &'a Value, id: &str) -> &'a Value {
    pipeline["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {pipeline}"))
}

/// `decode` then one Wasm node `n` on `component` with extra manifest lines.
fn one_wasm(id: &str, component: &str, extra: &str) -> String {
    format!(
        "id = \"{id}\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n\n\
         [[nodes]]\nid = \"n\"\nkind = \"wasm\"\ncomponent = \"{component}\"\ninputs = [\"decode\"]\n{extra}"
    )
}

#[tokio::test]
async fn edges_are_type_checked_at_load_naming_both_nodes_and_kinds() {
    // An image into the CTC decoder, which takes tensors (0.2.0, declared by `describe`).
    let image_into_ctc = one_wasm(
        "image_into_ctc",
        "ctc_decode.wasm",
        "config = { alphabet = \"ab\" }\n",
    );
    // JSON from a 0.2.0 node into a native node that takes tensors.
    let json_into_argmax = format!(
        "{}\n[[nodes]]\nid = \"max\"\nkind = \"argmax\"\ninputs = [\"n\"]\n",
        one_wasm("json_into_argmax", "motion.wasm", "")
    );
    // Native to native: an image into argmax, which takes tensors.
    let image_into_argmax =
        "id = \"image_into_argmax\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n\
        [[nodes]]\nid = \"max\"\nkind = \"argmax\"\ninputs = [\"decode\"]\n";
    // A manifest may narrow what a node declares, never widen it.
    let widened = one_wasm("widened", "motion.wasm", "gives = [\"image\"]\n");
    // A 0.1.0 component declares nothing: it loads, unchecked...
    let legacy = one_wasm("legacy", "fixture_logger.wasm", "");
    // ...until its manifest entry narrows it, and then its edges are checked too.
    let legacy_narrowed = one_wasm(
        "legacy_narrowed",
        "fixture_logger.wasm",
        "takes = [\"tensors\"]\n",
    );
    let server = TestServer::start(&[
        ("ocr", &shipped_pipeline("ocr")),
        ("image_into_ctc", &image_into_ctc),
        ("json_into_argmax", &json_into_argmax),
        ("image_into_argmax", image_into_argmax),
        ("widened", &widened),
        ("legacy", &legacy),
        ("legacy_narrowed", &legacy_narrowed),
    ])
    .await;
    let list = server.get_json("/pipelines").await;

    let ocr = find_pipeline(&list, "ocr");
    assert_eq!(ocr["status"], "ready", "{ocr}");
    let boxes = node(ocr, "boxes");
    assert_eq!(
        (&boxes["takes"], &boxes["gives"], &boxes["wit"]),
        (&json!(["tensors"]), &json!(["json"]), &json!("0.2.0")),
        "{boxes}"
    );
    let crop = node(ocr, "crop");
    assert_eq!(crop["takes"], json!(["image", "json"]), "{crop}");

    let failures = [
        (
            "image_into_ctc",
            "edge decode -> n: 'decode' gives image, but 'n' takes tensors",
        ),
        (
            "json_into_argmax",
            "edge n -> max: 'n' gives json, but 'max' takes tensors",
        ),
        (
            "image_into_argmax",
            "edge decode -> max: 'decode' gives image, but 'max' takes tensors",
        ),
        (
            "widened",
            "node 'n': `gives = [image]` widens what the node gives (json); a manifest may only narrow it",
        ),
        (
            "legacy_narrowed",
            "edge decode -> n: 'decode' gives image, but 'n' takes tensors",
        ),
    ];
    for (id, reason) in failures {
        let p = find_pipeline(&list, id);
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["reason"], reason, "{id}: {p}");
        let mut client = server.connect(id).await;
        let reply = client.recv_json().await;
        assert_eq!(reply["error"], "invalid_pipeline", "{reply}");
        client.expect_close(1008).await;
    }

    let legacy = find_pipeline(&list, "legacy");
    assert_eq!(legacy["status"], "ready", "{legacy}");
    let n = node(legacy, "n");
    assert_eq!(n["wit"], "0.1.0", "{n}");
    assert!(n.get("takes").is_none(), "a 0.1.0 node is unchecked: {n}");
    let mut client = server.connect("legacy").await;
    let reply = client.roundtrip(solid_jpeg(16, 16, [9, 9, 9])).await;
    assert_eq!(reply["result"]["logged"], 1, "{reply}");
}

#[tokio::test]
async fn a_node_is_told_its_frame_and_tensors_keep_their_dtypes() {
    // decode -> emit (makes a u8 and an s64 tensor) -> echo (reports them and its context);
    // old is a 0.1.0 node that cannot take those tensors. The fixture declares it gives tensors
    // or JSON, and echo takes no JSON, so emit's manifest entry narrows it to tensors.
    let manifest = "id = \"context\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n\
        [[nodes]]\nid = \"emit\"\nkind = \"wasm\"\ncomponent = \"fixture_context.wasm\"\ninputs = [\"decode\"]\nconfig = { emit = \"tensors\" }\ngives = [\"tensors\"]\n\
        [[nodes]]\nid = \"echo\"\nkind = \"wasm\"\ncomponent = \"fixture_context.wasm\"\ninputs = [\"emit\"]\n";
    let to_old = "id = \"to_old\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n\
        [[nodes]]\nid = \"emit\"\nkind = \"wasm\"\ncomponent = \"fixture_context.wasm\"\ninputs = [\"decode\"]\nconfig = { emit = \"tensors\" }\n\
        [[nodes]]\nid = \"old\"\nkind = \"wasm\"\ncomponent = \"fixture_logger.wasm\"\ninputs = [\"emit\"]\n";
    let server = TestServer::start(&[("context", manifest), ("to_old", to_old)]).await;
    let mut client = server.connect("context").await;
    let mut last_received = 0;
    for index in 1..=3u64 {
        let reply = client.roundtrip(solid_jpeg(40, 24, [1, 2, 3])).await;
        assert_eq!(reply["frame_index"], index, "{reply}");
        let r = &reply["result"];
        assert_eq!(
            r["frame_index"], index,
            "the node sees the reply's index: {r}"
        );
        assert_eq!(r["pipeline_id"], "context", "{r}");
        assert_eq!(r["inputs"], json!(["emit"]), "{r}");
        let received = r["received_us"].as_u64().unwrap();
        assert!(
            received >= last_received,
            "{received} after {last_received}"
        );
        last_received = received;
        assert_eq!(
            r["tensors"],
            json!([
                {"name": "small", "dtype": "u8", "values": [index, 255]},
                {"name": "big", "dtype": "s64", "values": [index, 40_000_000_000_000i64, -24]},
            ]),
            "{r}"
        );
    }
    // A u8 tensor cannot cross into a 0.1.0 node: the frame fails, naming it; the session goes on.
    let mut old = server.connect("to_old").await;
    let reply = old.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(reply["error"], "pipeline_failure", "{reply}");
    let detail = reply["detail"].as_str().unwrap();
    assert!(
        detail.contains("tensor 'small' holds u8 values") && detail.contains("takes only f32"),
        "{detail}"
    );
    let again = old.roundtrip(solid_jpeg(8, 8, [0, 0, 0])).await;
    assert_eq!(again["frame_index"], 2, "{again}");
}
