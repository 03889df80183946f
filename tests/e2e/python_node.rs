//! A node written in Python (`plugins/track_objects/app.py`, built by componentize-py from
//! source by the build script), in the shipped `track_objects` pipeline: it follows the YOLO
//! branch's detections across a session's frames with stable ids. Real frames (the example
//! frame's text, slid right a few pixels a frame), the real detector, a real server.

use serde_json::Value;
use streamhost::nodes::jpeg_decode::{decode, encode_rgb, JpegDecodeConfig};
use streamhost_tests::*;

/// Pixels the picture moves right per frame.
const STEP: usize = 4;

/// The example frame (640x480, three lines of text) on a canvas 40 px wider, `dx` px from the
/// left, the rest filled with the frame's own background.
fn slid(dx: usize) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/frames/frame.jpg");
    let jpeg = std::fs::read(&path).unwrap();
    let image = decode(&jpeg, &JpegDecodeConfig::default(), u64::MAX).unwrap();
    let (w, h) = (image.width as usize, image.height as usize);
    let canvas_w = w + 40;
    let background = [image.data[0], image.data[1], image.data[2]];
    let mut canvas: Vec<u8> = (0..canvas_w * h).flat_map(|_| background).collect();
    for y in 0..h {
        let from = &image.data[y * w * 3..(y + 1) * w * 3];
        let at = (y * canvas_w + dx) * 3;
        canvas[at..at + w * 3].copy_from_slice(from);
    }
    encode_rgb(canvas_w, h, &canvas, 95.0).unwrap()
}

fn blank() -> Vec<u8> {
    solid_jpeg(680, 480, [255, 255, 255])
}

/// The ids listed under `key` ("tracks", "lost" or "ended") in a reply's result, sorted.
fn ids(reply: &Value, key: &str) -> Vec<u64> {
    let mut ids: Vec<u64> = reply["result"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list: {reply}"))
        .iter()
        .map(|t| if key == "tracks" { &t["id"] } else { t })
        .map(|id| id.as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn the_python_node_keeps_stable_ids_across_frames_and_ends_tracks_per_session() {
    // Tracks end after one unseen frame here (5 in the shipped manifest), to keep the test short.
    let shipped = shipped_pipeline("track_objects");
    let quick = shipped.replace("max_missed = 5", "max_missed = 1");
    assert_ne!(quick, shipped, "the track_objects manifest changed shape");
    // The same component with a config the node itself rejects: the pipeline fails its load
    // check with the node's own reason.
    let bad = shipped
        .replace(r#"id = "track_objects""#, r#"id = "bad_tracks""#)
        .replace("iou = 0.3", "iou = 2");
    let server = TestServer::start(&[("track_objects", &quick), ("bad_tracks", &bad)]).await;

    let mut client = server.connect("track_objects").await;
    let mut replies = Vec::new();
    for k in 0..4 {
        replies.push(client.roundtrip(slid(k * STEP)).await);
    }
    let first = &replies[0];
    let n0 = first["frame_index"].as_u64().unwrap();
    let started = ids(first, "tracks");
    assert!(!started.is_empty(), "nothing detected: {first}");
    // Ids are per session and start at 1.
    assert_eq!(
        started,
        (1..=started.len() as u64).collect::<Vec<_>>(),
        "{first}"
    );
    for track in first["result"]["tracks"].as_array().unwrap() {
        assert_eq!(track["first_frame"], n0, "{first}");
        assert_eq!(track["frames_seen"], 1, "{first}");
        assert_eq!(track["velocity"], serde_json::json!([0.0, 0.0]), "{first}");
        assert_eq!(track["label"], "text", "{first}");
    }
    // Each later frame: the objects keep their ids and count their sightings, and they move
    // STEP px a frame to the right.
    let last = &replies[3];
    let kept: Vec<&Value> = last["result"]["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| started.contains(&t["id"].as_u64().unwrap()))
        .collect();
    assert!(
        kept.len() * 4 >= started.len() * 3,
        "most objects should keep their ids: started {started:?}, {last}"
    );
    // Box centres follow the picture: over the three steps, each kept track's centre moved about
    // 3 * STEP px right (detector jitter is a pixel or two per box), and the velocities the
    // node reports (per frame, since the previous sighting) average about STEP.
    let centre_x = |t: &Value| {
        let b = t["box"].as_array().unwrap();
        (b[0].as_f64().unwrap() + b[2].as_f64().unwrap()) / 2.0
    };
    let mut moved = Vec::new();
    let mut vx = Vec::new();
    for track in &kept {
        assert_eq!(track["first_frame"], n0, "{last}");
        let seen = track["frames_seen"].as_u64().unwrap();
        assert!((3..=4).contains(&seen), "{track}");
        let was = first["result"]["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == track["id"])
            .unwrap();
        moved.push((centre_x(track) - centre_x(was)) / 3.0);
        vx.push(track["velocity"][0].as_f64().unwrap());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let step = STEP as f64;
    assert!(
        (mean(&moved) - step).abs() <= 1.0 && (mean(&vx) - step).abs() <= 1.5,
        "moved {moved:?}, velocities {vx:?}: {replies:#?}"
    );
    // Out of view: first lost, then ended.
    let gone = client.roundtrip(blank()).await;
    assert_eq!(ids(&gone, "tracks"), Vec::<u64>::new(), "{gone}");
    let live = ids(last, "tracks");
    assert_eq!(ids(&gone, "lost"), live, "{gone}");
    let ended = client.roundtrip(blank()).await;
    assert_eq!(ids(&ended, "ended"), live, "{ended}");
    assert_eq!(ids(&ended, "lost"), Vec::<u64>::new(), "{ended}");

    // Another session has its own tracks, numbered from 1 again; the first one's go on.
    let mut other = server.connect("track_objects").await;
    let fresh = other.roundtrip(slid(0)).await;
    assert_eq!(ids(&fresh, "tracks")[0], 1, "{fresh}");
    let back = client.roundtrip(slid(0)).await;
    let max_started = *started.last().unwrap();
    assert!(
        ids(&back, "tracks").iter().all(|&id| id > max_started),
        "new tracks get new ids in the first session: {back}"
    );

    let listing = server.get_json("/pipelines").await;
    let entry = find_pipeline(&listing, "bad_tracks");
    assert_eq!(entry["status"], "failed", "{entry}");
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("node 'tracks'") && reason.contains("iou must be a number in (0, 1]"),
        "{reason}"
    );
}
