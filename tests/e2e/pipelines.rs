//! Seed step 7: frames really run through the pipeline's DAG and the reply
//! carries the pipeline's result. Real Wasm nodes, no mocks.

use serde_json::Value;
use streamhost_tests::*;

fn approx(v: &Value, want: f64, tol: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() <= tol)
}

#[tokio::test]
async fn frame_info_reports_the_frames_size_and_brightness() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let mut client = server.connect("frame_info").await;
    let reply = client
        .roundtrip(solid_jpeg(320, 240, [100, 100, 100]))
        .await;
    let r = &reply["result"];
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(320), Some(240)),
        "{reply}"
    );
    assert!(approx(&r["mean_brightness"], 100.0, 2.0), "{reply}");
    let reply = client.roundtrip(solid_jpeg(64, 48, [250, 250, 250])).await;
    let r = &reply["result"];
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(64), Some(48)),
        "{reply}"
    );
    assert!(approx(&r["mean_brightness"], 250.0, 2.0), "{reply}");
}

#[tokio::test]
async fn parallel_branches_merge_and_stateful_nodes_see_the_previous_frame() {
    let server = TestServer::start(&[("frame_stats", &shipped_pipeline("frame_stats"))]).await;
    let mut client = server.connect("frame_stats").await;
    let dark = solid_jpeg(160, 120, [20, 20, 20]);
    let first = client.roundtrip(dark.clone()).await;
    let r = &first["result"];
    assert_eq!(r["info"]["width"], 160, "{first}");
    assert_eq!(r["motion"]["first_frame"], true, "{first}");
    let same = client.roundtrip(dark).await;
    assert_eq!(same["result"]["motion"]["moving"], false, "{same}");
    assert!(
        approx(&same["result"]["motion"]["motion"], 0.0, 0.01),
        "{same}"
    );
    let bright = client
        .roundtrip(solid_jpeg(160, 120, [230, 230, 230]))
        .await;
    assert_eq!(bright["result"]["motion"]["moving"], true, "{bright}");
    assert!(
        approx(&bright["result"]["motion"]["motion"], 210.0 / 255.0, 0.05),
        "{bright}"
    );

    // Instances belong to a session: a new session's first frame is a first frame again.
    let mut other = server.connect("frame_stats").await;
    let fresh = other.roundtrip(solid_jpeg(160, 120, [230, 230, 230])).await;
    assert_eq!(fresh["result"]["motion"]["first_frame"], true, "{fresh}");
}

#[tokio::test]
async fn branches_of_one_wave_run_in_parallel() {
    // Two slow branches over one frame. Run in parallel, the frame's wall time
    // is about the longer branch's; in series it would be their sum. Each
    // node's time is wall time on its own thread, so the comparison holds
    // however loaded the machine is (shared cores stretch both alike).
    let slow = |id: &str| {
        format!("[[nodes]]\nid = \"{id}\"\nkind = \"wasm\"\ncomponent = \"fixture_slow.wasm\"\ninputs = [\"decode\"]\nconfig = {{ iterations = 40000000 }}\n")
    };
    let two = format!(
        "id = \"two\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n{}{}\
         [[nodes]]\nid = \"m\"\nkind = \"wasm\"\ncomponent = \"merge.wasm\"\ninputs = [\"a\", \"b\"]\n",
        slow("a"),
        slow("b")
    );
    let server = TestServer::start(&[("two", &two)]).await;
    let mut client = server.connect("two").await;
    for _ in 0..3 {
        let reply = client.roundtrip(solid_jpeg(16, 16, [0, 0, 0])).await;
        assert!(
            reply["result"]["a"]["iterations"].is_u64()
                && reply["result"]["b"]["iterations"].is_u64(),
            "{reply}"
        );
    }
    let frame = server
        .wait_metric(
            "stream_frame_latency_seconds_count{pipeline=\"two\",tenant=\"default\"}",
            3.0,
        )
        .await;
    assert_eq!(frame, 3.0);
    let sum = |series: &'static str| {
        let server = &server;
        async move { server.metric(series).await.unwrap() }
    };
    let frames = sum("stream_frame_latency_seconds_sum{pipeline=\"two\",tenant=\"default\"}").await;
    let a = sum("stream_node_latency_seconds_sum{node=\"a\",pipeline=\"two\",tenant=\"default\"}")
        .await;
    let b = sum("stream_node_latency_seconds_sum{node=\"b\",pipeline=\"two\",tenant=\"default\"}")
        .await;
    assert!(
        frames < 0.8 * (a + b),
        "frames took {frames:.3}s in all, branches {a:.3}s + {b:.3}s: not parallel"
    );
}
