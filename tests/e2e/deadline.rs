//! The frame deadline (`STREAMHOST_FRAME_TIMEOUT_MS`): a frame past it is
//! answered `pipeline_failure` naming the node it was in, an ONNX run is
//! terminated rather than waited for, a Wasm call is cut to the frame's time
//! left, and a frame whose session closed stops at its next node. Times are
//! compared with a baseline measured in the same test (the machine is shared),
//! never with absolute budgets alone.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use streamhost::nodes::jpeg_decode::encode_rgb;
use streamhost_tests::*;

/// decode -> to_tensor (long side up to 2048) -> the PP-OCRv6 detector: on a
/// big frame the model's run is most of the frame's time.
fn detector_pipeline(id: &str) -> String {
    format!(
        r#"id = "{id}"
[[nodes]]
id = "decode"
kind = "jpeg_decode"
config = {{ format = "bgr8" }}
[[nodes]]
id = "pre"
kind = "to_tensor"
inputs = ["decode"]
config = {{ name = "x", channels = "bgr", scale = 0.00392156862745098, mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5], resize = {{ mode = "fit", limit_side_len = 2048, limit_type = "max" }} }}
[[nodes]]
id = "det"
kind = "onnx"
inputs = ["pre.x"]
config = {{ model = "PP-OCRv6_det_small.onnx" }}
"#
    )
}

/// Sends `frame`, returns the reply and how long it took.
async fn timed(client: &mut Client, frame: Vec<u8>) -> (Value, Duration) {
    let started = Instant::now();
    let reply = client.roundtrip(frame).await;
    (reply, started.elapsed())
}

fn detail(reply: &Value) -> &str {
    reply["detail"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_onnx_run_past_the_deadline_is_terminated_and_named() {
    let big = gradient_jpeg(1600, 1600);
    // Baseline: the same frame with the default deadline, run to its end.
    let server = TestServer::start(&[("det_full", &detector_pipeline("det_full"))]).await;
    let mut client = server.connect("det_full").await;
    let (reply, full) = timed(&mut client, big.clone()).await;
    assert!(reply["result"]["tensors"].is_array(), "{reply}");
    let det = server
        .metric("stream_node_latency_seconds_sum{node=\"det\",pipeline=\"det_full\",tenant=\"default\"}")
        .await
        .unwrap();
    let det_took = Duration::from_secs_f64(det);
    let before_det = full.saturating_sub(det_took);
    assert!(
        det_took > before_det,
        "the model should dominate the frame: {det_took:?} of {full:?}"
    );
    // A session that closes during the run terminates it too.
    let sent = Instant::now();
    client.send_frame(big.clone()).await;
    tokio::time::sleep(before_det + det_took / 4).await;
    client.close().await;
    let line = wait_log(
        "frame abandoned: session closed",
        &[
            ("pipeline_id", json!("det_full")),
            ("frame_index", json!(2)),
        ],
    )
    .await;
    let stopped = sent.elapsed();
    assert_eq!(line["node_id"], "det", "{line}");
    assert!(
        stopped.as_secs_f64() < 0.8 * full.as_secs_f64(),
        "abandoned at {stopped:?}, a whole run took {full:?}"
    );
    drop(server);
    // A deadline well inside the model's run.
    let deadline = before_det + det_took * 2 / 5;
    let server = TestServer::start_with(&[("det_cut", &detector_pipeline("det_cut"))], |c| {
        c.frame_timeout = Some(deadline)
    })
    .await;
    let mut client = server.connect("det_cut").await;
    let (reply, cut) = timed(&mut client, big).await;
    assert_eq!(reply["error"], "pipeline_failure", "{reply}");
    assert_eq!(
        detail(&reply),
        format!(
            "node 'det' exceeded the frame's {} ms deadline",
            deadline.as_millis()
        ),
        "{reply}"
    );
    eprintln!("whole frame {full:?} (det {det_took:?}); deadline {deadline:?}; cut at {cut:?}");
    // Terminated, not waited for: the reply came well before the run's end.
    assert!(
        cut.as_secs_f64() < 0.8 * full.as_secs_f64(),
        "cut at {cut:?}, a whole run took {full:?} (deadline {deadline:?})"
    );
    // The session and the model's session serve the next frame.
    let (next, _) = timed(&mut client, gradient_jpeg(64, 64)).await;
    assert_eq!(next["frame_index"], 2, "{next}");
    assert!(next["result"]["tensors"].is_array(), "{next}");
    server
        .wait_metric(
            "stream_frames_cut{pipeline=\"det_cut\",reason=\"deadline\",tenant=\"default\"}",
            1.0,
        )
        .await;
}

#[tokio::test]
async fn a_native_node_past_the_deadline_is_named_when_it_returns() {
    // About 16 megapixels: decoding takes far longer than 5 ms.
    let (w, h) = (4000, 4000);
    let big = encode_rgb(w, h, &vec![128u8; w * h * 3], 80.0).unwrap();
    let server = TestServer::start_with(
        &[(
            "info_late",
            &shipped_pipeline("frame_info").replace("\"frame_info\"", "\"info_late\""),
        )],
        |c| c.frame_timeout = Some(Duration::from_millis(5)),
    )
    .await;
    let mut client = server.connect("info_late").await;
    let (reply, _) = timed(&mut client, big).await;
    assert_eq!(reply["error"], "pipeline_failure", "{reply}");
    assert_eq!(
        detail(&reply),
        "node 'decode' exceeded the frame's 5 ms deadline",
        "{reply}"
    );
}

#[tokio::test]
async fn a_wasm_call_is_cut_to_the_frames_time_left() {
    // About 3 s of work under a 10 s call limit: only the frame's 200 ms stops it.
    let server = TestServer::start_with(
        &[("slow_late", &slow_pipeline("slow_late", 1_500_000_000))],
        |c| {
            c.wasm_call_timeout = Duration::from_secs(10);
            c.frame_timeout = Some(Duration::from_millis(200));
        },
    )
    .await;
    let mut client = server.connect("slow_late").await;
    let (reply, took) = timed(&mut client, solid_jpeg(16, 16, [0, 0, 0])).await;
    assert_eq!(
        detail(&reply),
        "node 'node' exceeded the frame's 200 ms deadline",
        "{reply}"
    );
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[tokio::test]
async fn a_frame_whose_session_closed_stops_at_its_next_node() {
    // decode -> slow (about 0.6 s) -> after: closing during `slow` means
    // `after` never starts.
    let manifest = r#"id = "gone"
[[nodes]]
id = "decode"
kind = "jpeg_decode"
[[nodes]]
id = "slow"
kind = "wasm"
component = "fixture_slow.wasm"
inputs = ["decode"]
config = { iterations = 300000000 }
[[nodes]]
id = "after"
kind = "wasm"
component = "fixture_slow.wasm"
inputs = ["slow"]
config = { iterations = 1 }
"#;
    let server = TestServer::start_with(&[("gone", manifest)], |c| {
        c.wasm_call_timeout = Duration::from_secs(10);
    })
    .await;
    let mut client = server.connect("gone").await;
    // A first frame warms the instances and says how long `slow` takes.
    let (reply, took) = timed(&mut client, solid_jpeg(16, 16, [0, 0, 0])).await;
    assert!(reply["result"]["iterations"].is_u64(), "{reply}");
    client.send_frame(solid_jpeg(16, 16, [0, 0, 0])).await;
    tokio::time::sleep(took / 3).await;
    client.close().await;
    let line = wait_log(
        "frame abandoned: session closed",
        &[("pipeline_id", json!("gone")), ("frame_index", json!(2))],
    )
    .await;
    assert_eq!(line["node_id"], "after", "{line}");
    server
        .wait_metric(
            "stream_frames_cut{pipeline=\"gone\",reason=\"session_closed\",tenant=\"default\"}",
            1.0,
        )
        .await;
}
