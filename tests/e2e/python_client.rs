//! The Python example client (`examples/python/stream_client.py`), run as a
//! user runs it, in its own venv (`scripts/client-venv.sh`, made by the
//! build script), against a real server: its exit status follows the
//! contract's error codes, not whether a reply carries a `frame_index`.

use std::path::PathBuf;
use std::process::Command;

use streamhost_tests::*;

/// Runs the client on `frame`; returns its exit code and what it printed.
async fn run_client(server: &TestServer, frame: Vec<u8>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frame.jpg");
    std::fs::write(&file, frame).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/python/stream_client.py");
    let url = format!("ws://{}/ws/video/stream", server.addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("STREAMHOST_TEST_CLIENT_PYTHON"))
            .arg(script)
            .arg(&file)
            .args(["--url", &url, "--pipeline", "frame_info", "--timeout", "20"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), printed)
}

#[tokio::test]
async fn the_python_client_exits_0_on_a_result_and_1_on_a_decode_level_invalid_frame() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let (code, printed) = run_client(&server, solid_jpeg(32, 24, [200, 10, 10])).await;
    assert_eq!(code, 0, "{printed}");
    assert!(
        printed.contains("\"width\": 32") || printed.contains("\"width\":32"),
        "{printed}"
    );
    // Markers fine, body not a JPEG: the reply carries frame_index 1 and the
    // session closes 1007, so the client must treat it as fatal by its code.
    let corrupt = b"\xFF\xD8\xFF\xE0garbage-that-is-no-jpeg\xFF\xD9".to_vec();
    let (code, printed) = run_client(&server, corrupt).await;
    assert_eq!(code, 1, "{printed}");
    assert!(printed.contains("invalid_frame"), "{printed}");
    assert!(printed.contains("frame_index"), "{printed}");
}
