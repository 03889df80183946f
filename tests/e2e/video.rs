//! `ocr_stream` on short clips cut from rendered stills (`tests/clips/`,
//! written by `bench/make_clips.py --stills`): a pan across a wide sign, a
//! counter that changes, a cut between two scenes with a line in the same
//! place. Each clip runs through `ocr_stream` and, frame by frame, through
//! `ocr` on the same server, which is the reference: the correctness rules of
//! video reuse are checked against what `ocr` reads on the same frame, and
//! `/metrics`' per-node run and skip counters show the work was skipped.

use serde_json::Value;
use streamhost::nodes::jpeg_decode::{self, JpegDecodeConfig};
use streamhost_tests::*;

struct Still {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

fn still(name: &str) -> Still {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clips")
        .join(name);
    let jpeg = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let image = jpeg_decode::decode(&jpeg, &JpegDecodeConfig::default(), 1 << 24).unwrap();
    Still {
        width: image.width as usize,
        height: image.height as usize,
        rgb: image.data,
    }
}

/// A `w` x `h` window of `s` at `(x0, y0)` with sensor noise (+-`noise`
/// levels, seeded by `seed`), as the JPEG a camera would send.
fn frame(
    s: &Still,
    (x0, y0): (usize, usize),
    (w, h): (usize, usize),
    noise: u8,
    seed: u32,
) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(w * h * 3);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for y in y0..y0 + h {
        let row = &s.rgb[(y * s.width + x0) * 3..(y * s.width + x0 + w) * 3];
        for &v in row {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let n = if noise == 0 {
                0
            } else {
                (state % (2 * noise as u32 + 1)) as i32 - noise as i32
            };
            rgb.push((v as i32 + n).clamp(0, 255) as u8);
        }
    }
    jpeg_decode::encode_rgb(w, h, &rgb, 92.0).unwrap()
}

fn whole(s: &Still, noise: u8, seed: u32) -> Vec<u8> {
    frame(s, (0, 0), (s.width, s.height), noise, seed)
}

fn lines(reply: &Value) -> Vec<Value> {
    reply["result"]["text"]
        .as_array()
        .unwrap_or_else(|| panic!("no text in {reply}"))
        .clone()
}

fn texts(reply: &Value) -> Vec<String> {
    lines(reply)
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect()
}

/// The box's bounds: [x1, y1, x2, y2].
fn bounds(line: &Value) -> [f64; 4] {
    let pts: Vec<(f64, f64)> = line["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let xs = pts.iter().map(|p| p.0);
    let ys = pts.iter().map(|p| p.1);
    [
        xs.clone().fold(f64::INFINITY, f64::min),
        ys.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
        ys.fold(f64::NEG_INFINITY, f64::max),
    ]
}

/// Intersection over the smaller box's area.
fn overlap(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / area(a).min(area(b)).max(1.0)
}

fn reused(line: &Value) -> bool {
    line.get("reused") == Some(&Value::Bool(true))
}

async fn runs(server: &TestServer, node: &str, outcome: &str) -> f64 {
    let series = format!(
        "stream_node_runs{{node=\"{node}\",outcome=\"{outcome}\",pipeline=\"ocr_stream\",tenant=\"default\"}}"
    );
    server.metric(&series).await.unwrap_or(0.0)
}

async fn both() -> TestServer {
    TestServer::start(&[
        ("ocr", &shipped_pipeline("ocr")),
        ("ocr_stream", &shipped_pipeline("ocr_stream")),
    ])
    .await
}

#[tokio::test]
async fn boxes_follow_a_pan_without_the_detector_and_read_what_ocr_reads() {
    let server = both().await;
    let mut stream = server.connect("ocr_stream").await;
    let mut reference = server.connect("ocr").await;
    let sign = still("wide.jpg");
    let frames = 24;
    let mut reused_lines = 0;
    for k in 0..frames {
        // 3 px a frame to the right, with a little vertical wobble.
        let origin = (40 + 3 * k, 2 + (k % 3));
        let jpeg = frame(&sign, origin, (480, 340), 3, k as u32);
        let got = stream.roundtrip(jpeg.clone()).await;
        let want = reference.roundtrip(jpeg).await;
        // Lines wholly in view, on both sides, must agree: the same text, the box within
        // 4 px of ocr's. (A line entering at the edge is read as far as the key frame saw
        // it until the next key frame: README "Video".)
        let inside = |l: &&Value| {
            let b = bounds(l);
            b[0] >= 8.0 && b[2] <= 480.0 - 8.0
        };
        let (ours, theirs) = (lines(&got), lines(&want));
        for w in theirs.iter().filter(inside) {
            let Some(g) = ours.iter().find(|g| g["text"] == w["text"]) else {
                panic!(
                    "frame {k}: ocr reads {} but ocr_stream does not: {got}\nocr: {want}",
                    w["text"]
                );
            };
            let off = bounds(g)
                .iter()
                .zip(bounds(w))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                off <= 4.0,
                "frame {k}: a box is {off} px from ocr's: {got}\nocr: {want}"
            );
        }
        // Any other line of ours is one entering at the edge, read as far as it was seen:
        // ocr's line there begins with it, or both are cut by the edge.
        for g in &ours {
            if theirs.iter().any(|w| w["text"] == g["text"]) {
                continue;
            }
            let partial = theirs.iter().any(|w| {
                let text = |l: &Value| l["text"].as_str().unwrap().to_string();
                let begins = text(w).starts_with(&text(g));
                !inside(&w) && overlap(&bounds(g), &bounds(w)) > 0.3 && (begins || !inside(&g))
            });
            assert!(
                partial,
                "frame {k}: ocr_stream reads {} where ocr does not: {got}\nocr: {want}",
                g["text"]
            );
        }
        reused_lines += lines(&got).iter().filter(|l| reused(l)).count();
    }
    assert!(reused_lines > 0, "no line was ever reused");
    // The counters: the detector ran on a minority of frames, skipped on the rest.
    let (ran, skipped) = (
        runs(&server, "det", "ran").await,
        runs(&server, "det", "skipped").await,
    );
    assert_eq!(
        ran + skipped,
        frames as f64,
        "det ran {ran}, skipped {skipped}"
    );
    assert!(skipped >= ran, "det ran {ran} times in {frames} frames");
    assert_eq!(runs(&server, "motion", "ran").await, frames as f64);
    assert!(runs(&server, "rec", "skipped").await > 0.0);
}

#[tokio::test]
async fn a_changed_line_is_read_again_and_its_old_text_never_returns() {
    let server = both().await;
    let mut stream = server.connect("ocr_stream").await;
    let (before, after) = (still("counter_1.jpg"), still("counter_2.jpg"));
    for k in 0..4 {
        let got = stream.roundtrip(whole(&before, 3, k)).await;
        assert!(texts(&got).contains(&"Visitors: 1041".to_string()), "{got}");
        if k > 0 {
            assert!(
                lines(&got).iter().all(reused),
                "frame {k}: nothing changed: {got}"
            );
        }
    }
    for k in 0..4 {
        let got = stream.roundtrip(whole(&after, 3, 10 + k)).await;
        let t = texts(&got);
        assert!(
            t.contains(&"Visitors: 1047".to_string()),
            "frame {k} after the change: {got}"
        );
        assert!(
            !t.iter().any(|l| l.contains("1041")),
            "the old count came back: {got}"
        );
        if k == 0 {
            // Only the changed line was read; the others came from memory.
            for line in lines(&got) {
                let changed = line["text"].as_str().unwrap().starts_with("Visitors");
                assert_eq!(reused(&line), !changed, "{got}");
            }
        }
    }
    // The recogniser ran on the first frame's three lines and on the one changed line.
    let rec = runs(&server, "rec", "ran").await;
    assert_eq!(rec, 2.0, "rec ran on {rec} frames");
}

#[tokio::test]
async fn after_a_cut_nothing_of_the_old_scene_is_reported() {
    let server = both().await;
    let mut stream = server.connect("ocr_stream").await;
    let mut reference = server.connect("ocr").await;
    let (a, b) = (still("scene_a.jpg"), still("scene_b.jpg"));
    let old: Vec<String> = {
        let got = stream.roundtrip(whole(&a, 3, 1)).await;
        for k in 2..4 {
            stream.roundtrip(whole(&a, 3, k)).await;
        }
        texts(&got)
    };
    assert!(old.contains(&"Room 305".to_string()), "{old:?}");
    for k in 0..4 {
        let jpeg = whole(&b, 3, 20 + k);
        let got = stream.roundtrip(jpeg.clone()).await;
        let want = reference.roundtrip(jpeg).await;
        let t = texts(&got);
        for line in &old {
            assert!(
                !t.contains(line),
                "'{line}' of the old scene after the cut: {got}"
            );
        }
        // "Room 815" sits exactly where "Room 305" was.
        assert!(t.contains(&"Room 815".to_string()), "{got}");
        assert_eq!(t, texts(&want), "frame {k} after the cut");
        if k == 0 {
            assert!(
                !lines(&got).iter().any(reused),
                "reused across a cut: {got}"
            );
        }
    }
}

#[tokio::test]
async fn the_listing_shows_conditions_and_state_and_a_skippable_output_is_refused() {
    let broken = r#"
id = "skips_its_output"
[[nodes]]
id = "decode"
kind = "jpeg_decode"
[[nodes]]
id = "motion"
kind = "scene_motion"
inputs = ["decode"]
[[nodes]]
id = "pre"
kind = "to_tensor"
inputs = ["decode"]
when = "motion.detect"
config = { name = "x", channels = "rgb", scale = 0.0039 }
"#;
    let server = TestServer::start(&[
        ("ocr_stream", &shipped_pipeline("ocr_stream")),
        ("skips_its_output", broken),
    ])
    .await;
    let entry = server.listing("ocr_stream").await.unwrap();
    assert_eq!(entry["status"], "ready", "{entry}");
    let node = |id: &str| {
        entry["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no node {id} in {entry}"))
    };
    assert_eq!(node("det_pre")["when"], "motion.detect");
    assert_eq!(node("det")["may_skip"], true, "{}", node("det"));
    assert_eq!(
        node("boxes")["inputs"],
        serde_json::json!(["found?", "motion"])
    );
    assert!(node("boxes").get("may_skip").is_none(), "{}", node("boxes"));
    assert_eq!(node("motion")["stateful"], true);
    assert!(node("crop").get("stateful").is_none());
    let failed = server.listing("skips_its_output").await.unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("output node 'pre' may be skipped"),
        "{reason}"
    );
}

#[tokio::test]
async fn frames_of_any_size_are_answered_and_reuse_starts_afresh_after_a_change_of_size() {
    let server = TestServer::start(&[("ocr_stream", &shipped_pipeline("ocr_stream"))]).await;
    let mut stream = server.connect("ocr_stream").await;
    let sign = still("counter_1.jpg");
    let first = stream.roundtrip(whole(&sign, 2, 1)).await;
    assert!(
        texts(&first).contains(&"Visitors: 1041".to_string()),
        "{first}"
    );
    // A frame too small to track, a large one, a thin strip: each answered in turn.
    for jpeg in [
        solid_jpeg(40, 30, [200, 200, 200]),
        gradient_jpeg(1280, 720),
        solid_jpeg(640, 8, [0, 0, 0]),
        solid_jpeg(40, 30, [200, 200, 200]),
    ] {
        let reply = stream.roundtrip(jpeg).await;
        assert_eq!(reply["result"]["text"], serde_json::json!([]), "{reply}");
    }
    // Back to the sign: read afresh, nothing carried over across the changes of size...
    let again = stream.roundtrip(whole(&sign, 2, 2)).await;
    assert_eq!(texts(&again), texts(&first), "{again}");
    assert!(!lines(&again).iter().any(reused), "{again}");
    // ...and carried over again from the next frame.
    let next = stream.roundtrip(whole(&sign, 2, 3)).await;
    assert!(lines(&next).iter().all(reused), "{next}");
    assert_eq!(texts(&next), texts(&first));
}
