//! The live view in a real, headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver), whose camera plays a clip this
//! test renders with known text (`tests/fake_camera.py`).
//!
//! One test, one browser and one server, scenarios in turn: a browser costs
//! seconds to start and two cores are shared with the rest of the suite. The
//! server runs with a tenants file (so the page's token travels as the
//! `bearer.` subprotocol) and an origin list (so a foreign page can be
//! refused); the page's numbers are read from its status bar's `data-value`s
//! and compared with the server's own metrics.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use streamhost_tests::webdriver::{self, Browser};
use streamhost_tests::*;

const TOKEN: &str = "sh_browser_test_7d2f41";
const WAIT: Duration = Duration::from_secs(90);

/// Renders the fake camera clip and a still of its first frame; returns
/// their paths and what was drawn where.
fn render_clip(dir: &std::path::Path) -> (PathBuf, PathBuf, Value) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".deps/quant-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `make models` creates it (numpy + Pillow render the clip)",
        python.display()
    );
    let clip = dir.join("camera.y4m");
    let still = dir.join("still.png");
    let out = Command::new(&python)
        .arg(root.join("tests/fake_camera.py"))
        .arg(&clip)
        .arg(&still)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fake_camera.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (clip, still, serde_json::from_slice(&out.stdout).unwrap())
}

async fn start_server(dir: &std::path::Path) -> TestServer {
    let tenants = one_tenant_file(dir, "web", TOKEN);
    TestServer::start_with(
        &[
            ("ocr", &shipped_pipeline("ocr")),
            ("ocr_stream", &shipped_pipeline("ocr_stream")),
            ("frame_info", &shipped_pipeline("frame_info")),
            // About 0.2 s a frame: far slower than the 20 fps the page is told to send.
            ("slow", &slow_pipeline("slow", 100_000_000)),
            // Fails its load check: the picker must show it, disabled, with the reason.
            ("broken", &wasm_pipeline("broken", "no_such_node.wasm", "")),
        ],
        |c| {
            c.tenants_file = Some(tenants);
            c.allowed_origins = vec!["https://kiosk.example".into()];
        },
    )
    .await
}

/// A status bar number (`data-value`).
async fn stat(b: &Browser, id: &str) -> f64 {
    let v = b
        .eval(&format!(
            "return document.getElementById('{id}').dataset.value"
        ))
        .await;
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("#{id} has no number: {v}"))
}

async fn open(b: &Browser, url: &str) {
    b.goto(url).await;
    b.wait_for(
        "the page to load its pipelines",
        "return document.body.dataset.ready === '1'",
        WAIT,
    )
    .await;
}

async fn wait_error(b: &Browser, code: &str) -> String {
    let script = format!(
        "const e = document.getElementById('error'); \
         return !e.hidden && e.dataset.code === '{code}' ? e.innerText : null"
    );
    let shown = b.wait_for(&format!("error {code}"), &script, WAIT).await;
    shown.as_str().unwrap_or_default().to_string()
}

/// Clicks Stop and waits until every frame sent has been answered and the session closed.
async fn stop(b: &Browser) {
    b.click("#stop").await;
    b.wait_for(
        "the session to stop",
        "return document.getElementById('state').dataset.state === 'stopped'",
        WAIT,
    )
    .await;
}

/// Painted (non-transparent) overlay pixels inside `[x1, y1, x2, y2]`.
async fn painted(b: &Browser, rect: [i64; 4]) -> i64 {
    let [x1, y1, x2, y2] = rect;
    let script = format!(
        "const c = document.getElementById('overlay'); \
         const d = c.getContext('2d').getImageData({x1}, {y1}, {w}, {h}).data; \
         let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;",
        w = x2 - x1,
        h = y2 - y1
    );
    b.eval(&script).await.as_i64().unwrap()
}

/// Saves a screenshot under the target directory (for a person to look at).
async fn save_screenshot(b: &Browser, name: &str) {
    let shot = b.screenshot().await;
    assert!(shot.starts_with(b"\x89PNG"), "not a PNG");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, &shot).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// What every scenario works with: one browser, one server.
struct Ctx {
    b: Browser,
    server: TestServer,
    base: String,
    drawn: Value,
    still: PathBuf,
    dir: tempfile::TempDir,
}

/// The texts of the clip's lines.
fn clip_texts(drawn: &Value) -> Vec<&str> {
    drawn["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect()
}

/// The script that returns the lines read once every line of the clip is listed.
fn lines_listed(drawn: &Value) -> String {
    let expected = clip_texts(drawn);
    format!(
        "const read = [...document.querySelectorAll('#lines .text')].map(e => e.textContent); \
         return {} .every(t => read.includes(t)) ? read : null",
        serde_json::to_string(&expected).unwrap()
    )
}

#[tokio::test]
async fn the_live_view_works_in_a_real_chromium() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (clip, still, drawn) = render_clip(dir.path());
    let server = start_server(dir.path()).await;
    let base = format!("http://{}", server.addr);
    let b = Browser::start(&clip, 1200, 800).await;
    let mut c = Ctx {
        b,
        server,
        base,
        drawn,
        still,
        dir,
    };
    // Each boxed: one async state machine holding every scenario overflows a debug build's stack.
    Box::pin(refusals(&c)).await;
    Box::pin(camera_to_ocr(&c)).await;
    Box::pin(camera_to_ocr_stream(&c)).await;
    Box::pin(still_image(&c)).await;
    Box::pin(video_file(&c)).await;
    Box::pin(slow_down(&c)).await;
    Box::pin(foreign_origin(&c)).await;
    Box::pin(lan(&c)).await;
    Box::pin(reconnect(&mut c)).await;
    eprintln!("browser test took {:?}", started.elapsed());
}

/// A wrong token shows `unauthorized`; with the right one an unknown pipeline shows `invalid_pipeline`.
async fn refusals(c: &Ctx) {
    let Ctx {
        b, server, base, ..
    } = c;
    // Without a token the server lists no pipelines (tenants are configured): the page says why.
    open(b, &format!("{base}/")).await;
    let shown = wait_error(b, "unauthorized").await;
    assert!(shown.contains("API token"), "{shown}");
    // With the token (kept for the tab's session) the picker is filled from GET /pipelines; a
    // failed pipeline is shown with its reason.
    b.eval(&format!(
        "sessionStorage.setItem('streamhost.token', '{TOKEN}')"
    ))
    .await;
    open(b, &format!("{base}/")).await;
    let listed = b
        .eval(
            "return [...document.querySelectorAll('#pipeline option')] \
             .map(o => [o.value, o.disabled, o.textContent])",
        )
        .await;
    let listed = listed.as_array().unwrap();
    for id in ["ocr", "frame_info", "slow"] {
        assert!(
            listed.iter().any(|o| o[0] == id && o[1] == false),
            "{id} not offered: {listed:?}"
        );
    }
    let broken = listed.iter().find(|o| o[0] == "broken").unwrap();
    assert_eq!(broken[1], true, "{broken}");
    assert!(broken[2].as_str().unwrap().contains("failed"), "{broken}");
    let note = b
        .eval("const n = document.getElementById('pipeline-note'); return n.hidden ? '' : n.textContent")
        .await;
    assert!(
        note.as_str().unwrap().contains("no_such_node.wasm"),
        "{note}"
    );

    // A wrong token: the page learns why the upgrade was refused and says so.
    b.eval("sessionStorage.setItem('streamhost.token', 'not-the-token')")
        .await;
    open(b, &format!("{base}/?pipeline_id=frame_info&autostart=1")).await;
    let shown = wait_error(b, "unauthorized").await;
    assert!(shown.contains("unauthorized"), "{shown}");
    save_screenshot(b, "live-view-unauthorized.png").await;
    assert_eq!(
        server.metric("stream_errors{code=\"unauthorized\"}").await,
        Some(1.0)
    );

    // The right token (kept for the tab's session) and an unknown pipeline.
    b.eval(&format!(
        "sessionStorage.setItem('streamhost.token', '{TOKEN}')"
    ))
    .await;
    open(b, &format!("{base}/?pipeline_id=nope&autostart=1")).await;
    let shown = wait_error(b, "invalid_pipeline").await;
    assert!(shown.contains("Unknown pipeline_id"), "{shown}");
}

/// The fake camera streamed to `ocr`: lines listed, overlay in place, counters equal to the metrics.
async fn camera_to_ocr(c: &Ctx) {
    let Ctx {
        b,
        server,
        base,
        drawn,
        ..
    } = c;
    // The camera to `ocr`: the clip's lines are listed and drawn where they are.
    open(b, &format!("{base}/?pipeline_id=ocr&autostart=1")).await;
    let lines_listed = lines_listed(drawn);
    let read = b
        .wait_for("the clip's lines in the list", &lines_listed, WAIT)
        .await;
    eprintln!("lines read: {read}");
    let size = b
        .eval("const c = document.getElementById('overlay'); return [c.width, c.height]")
        .await;
    assert_eq!(size, serde_json::json!([drawn["width"], drawn["height"]]));
    for line in drawn["lines"].as_array().unwrap() {
        let [x1, y1, x2, y2] = [0, 1, 2, 3].map(|i| line["box"][i].as_i64().unwrap());
        // The line's box is stroked along its edges: its left and right ends.
        let left = painted(b, [x1 - 12, y1, x1 + 12, y2]).await;
        let right = painted(b, [x2 - 12, y1, x2 + 12, y2]).await;
        assert!(
            left > 20 && right > 20,
            "{line}: left {left}, right {right}"
        );
    }
    // Below the text nothing is drawn.
    let lowest = drawn["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["box"][3].as_i64().unwrap())
        .max()
        .unwrap();
    let height = drawn["height"].as_i64().unwrap();
    let width = drawn["width"].as_i64().unwrap();
    assert_eq!(painted(b, [0, lowest + 30, width, height]).await, 0);
    save_screenshot(b, "live-view.png").await;

    // The page's counters agree with the server's for that session.
    stop(b).await;
    let sent = stat(b, "st-sent").await;
    let answered = stat(b, "st-answered").await;
    let processed = stat(b, "st-processed").await;
    let dropped = stat(b, "st-dropped").await;
    assert!(processed >= 1.0);
    assert_eq!(sent, answered, "every frame sent was answered");
    assert_eq!(answered, processed + dropped + stat(b, "st-failed").await);
    server
        .wait_metric(
            "stream_frames_processed{pipeline=\"ocr\",tenant=\"web\"}",
            processed,
        )
        .await;
    server
        .wait_metric(
            "stream_frames_dropped{pipeline=\"ocr\",reason=\"busy\",tenant=\"web\"}",
            dropped,
        )
        .await;
}

/// The fake camera to `ocr_stream`: the same lines read, and once the scene has been seen,
/// lines carried over from an earlier frame are marked so in the list and drawn dashed.
async fn camera_to_ocr_stream(c: &Ctx) {
    let Ctx { b, base, drawn, .. } = c;
    open(b, &format!("{base}/?pipeline_id=ocr_stream&autostart=1")).await;
    let lines_listed = lines_listed(drawn);
    b.wait_for("the clip's lines in the list", &lines_listed, WAIT)
        .await;
    let marked = b
        .wait_for(
            "a line marked as carried over",
            "const r = [...document.querySelectorAll('#lines .reused')]; \
             return r.length ? r.map(e => e.closest('li').querySelector('.text').textContent) : null",
            WAIT,
        )
        .await;
    eprintln!("lines carried over: {marked}");
    // And the page says what "carried over" means.
    let hint = b
        .eval("const h = document.getElementById('reuse-hint'); return h.hidden ? null : h.textContent")
        .await;
    assert!(
        hint.as_str().is_some_and(|h| h.contains("not read again")),
        "{hint}"
    );
    let expected = clip_texts(drawn);
    for text in marked.as_array().unwrap() {
        assert!(
            expected.contains(&text.as_str().unwrap()),
            "{text} was carried over but is not in the clip"
        );
    }
    save_screenshot(b, "live-view-stream.png").await;
    stop(b).await;
}

/// A still image is sent once and read.
async fn still_image(c: &Ctx) {
    let Ctx {
        b,
        base,
        drawn,
        still,
        ..
    } = c;
    // A still image the user picks is sent once, and read the same.
    open(b, &format!("{base}/?pipeline_id=ocr&source=image")).await;
    b.type_into("#file", &still.display().to_string()).await;
    b.click("#start").await;
    b.wait_for("the still's lines in the list", &lines_listed(drawn), WAIT)
        .await;
    b.wait_for(
        "the still's session to end",
        "return document.getElementById('state').dataset.state === 'stopped'",
        WAIT,
    )
    .await;
    assert_eq!(stat(b, "st-sent").await, 1.0);
    assert_eq!(stat(b, "st-processed").await, 1.0);
}

/// A video file the user picks is played and sampled. The file is the fake
/// camera recorded by this same browser (MediaRecorder, WebM/VP8): a clip
/// Chromium can play that the test needs no encoder to make.
async fn video_file(c: &Ctx) {
    let Ctx {
        b,
        base,
        drawn,
        dir,
        ..
    } = c;
    open(b, &format!("{base}/")).await;
    let recorded = b
        .eval_async(
            "const done = arguments[arguments.length - 1];
             (async () => {
               const stream = await navigator.mediaDevices.getUserMedia({ video: true });
               const rec = new MediaRecorder(stream, { mimeType: 'video/webm;codecs=vp8' });
               const chunks = [];
               rec.ondataavailable = (e) => chunks.push(e.data);
               rec.onstop = async () => {
                 stream.getTracks().forEach((t) => t.stop());
                 const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
                 let s = '';
                 for (let i = 0; i < bytes.length; i += 0x8000) {
                   s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
                 }
                 done(btoa(s));
               };
               rec.start();
               setTimeout(() => rec.stop(), 3000);
             })().catch((e) => done('error: ' + e));",
        )
        .await;
    let recorded = recorded.as_str().unwrap();
    assert!(!recorded.starts_with("error"), "{recorded}");
    let clip = dir.path().join("recorded.webm");
    std::fs::write(&clip, webdriver::base64_decode(recorded)).unwrap();
    open(b, &format!("{base}/?pipeline_id=ocr&source=video")).await;
    b.type_into("#file", &clip.display().to_string()).await;
    b.click("#start").await;
    b.wait_for("the video's lines in the list", &lines_listed(drawn), WAIT)
        .await;
    let playing = b
        .eval("const v = document.getElementById('video'); return !v.hidden && v.currentTime > 0")
        .await;
    assert_eq!(playing, true);
    stop(b).await;
}

/// A pipeline slower than the rate asked for: `slow_down`, and the page sends less.
async fn slow_down(c: &Ctx) {
    let Ctx {
        b, server, base, ..
    } = c;
    // A pipeline far slower than the 20 fps asked for: frames drop, the server
    // warns, and the page halves its rate.
    open(
        b,
        &format!("{base}/?pipeline_id=slow&autostart=1&fps=20&inflight=4&size=320"),
    )
    .await;
    b.wait_for(
        "a slow_down",
        "return Number(document.getElementById('st-slowdowns').dataset.value) >= 1",
        WAIT,
    )
    .await;
    let rate = stat(b, "st-rate").await;
    assert!(rate <= 10.0, "send rate after slow_down: {rate}");
    let before = stat(b, "st-sent").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent_in_3s = stat(b, "st-sent").await - before;
    assert!(
        sent_in_3s <= 40.0,
        "{sent_in_3s} frames in 3 s after slow_down (20 fps would be 60)"
    );
    save_screenshot(b, "live-view-slow-down.png").await;
    stop(b).await;
    let slowdowns = stat(b, "st-slowdowns").await;
    server
        .wait_metric("stream_slowdown_signals{pipeline=\"slow\"}", slowdowns)
        .await;
    server
        .wait_metric(
            "stream_frames_dropped{pipeline=\"slow\",reason=\"busy\",tenant=\"web\"}",
            stat(b, "st-dropped").await,
        )
        .await;
}

/// A page from another origin cannot open a session.
async fn foreign_origin(c: &Ctx) {
    let Ctx { b, server, .. } = c;
    // A page from another origin (localhost is not 127.0.0.1, and the list
    // replaces the loopback default) cannot open a session.
    b.goto(&format!("http://localhost:{}/health", server.addr.port()))
        .await;
    let outcome = b
        .eval_async(&format!(
            "const done = arguments[arguments.length - 1]; \
             const ws = new WebSocket('ws://{}/ws/video/stream?pipeline_id=frame_info', \
                                      ['streamhost', 'bearer.{TOKEN}']); \
             ws.onopen = () => done('open'); ws.onclose = (e) => done('closed ' + e.code);",
            server.addr
        ))
        .await;
    assert_eq!(outcome, "closed 1006");
    assert_eq!(
        server.metric("stream_errors{code=\"forbidden\"}").await,
        Some(1.0)
    );
}

/// The LAN case: no camera over plain HTTP, the camera over HTTPS and WSS.
async fn lan(c: &Ctx) {
    let Ctx { b, dir, .. } = c;
    // Away from loopback the camera needs a secure context: over plain HTTP the
    // page says so; over HTTPS (a self-signed certificate, as the README shows
    // for a LAN) the camera streams, and the WebSocket is WSS.
    match lan_ipv4() {
        Some(ip) => {
            let plain = TestServer::start_on(
                &format!("{ip}:0"),
                &[("frame_info", &shipped_pipeline("frame_info"))],
                |_| {},
            )
            .await;
            open(
                b,
                &format!("http://{}/?pipeline_id=frame_info&autostart=1", plain.addr),
            )
            .await;
            let shown = wait_error(b, "source_unavailable").await;
            assert!(shown.contains("https://"), "{shown}");
            save_screenshot(b, "live-view-lan-http.png").await;
            plain.stop().await;
            let (cert, key) = self_signed_cert(dir.path(), &[ip.as_str()]);
            let secure = TestServer::start_on(
                &format!("{ip}:0"),
                &[("frame_info", &shipped_pipeline("frame_info"))],
                |c| {
                    c.tls_cert = Some(cert);
                    c.tls_key = Some(key);
                },
            )
            .await;
            open(
                b,
                &format!(
                    "https://{}/?pipeline_id=frame_info&autostart=1",
                    secure.addr
                ),
            )
            .await;
            b.wait_for(
                "frames answered over WSS",
                "return Number(document.getElementById('st-processed').dataset.value) >= 1",
                WAIT,
            )
            .await;
            assert_eq!(b.eval("return window.isSecureContext").await, true);
            stop(b).await;
            secure.stop().await;
        }
        None => eprintln!("no non-loopback IPv4 address: the LAN HTTPS scenario did not run"),
    }
}

/// A server shutdown (1001): the page reconnects.
async fn reconnect(c: &mut Ctx) {
    let Ctx {
        b, server, base, ..
    } = c;
    // The server going away (1001) is worth another try: the page reconnects.
    open(b, &format!("{base}/?pipeline_id=frame_info&autostart=1")).await;
    b.wait_for(
        "frames answered",
        "return Number(document.getElementById('st-processed').dataset.value) >= 1",
        WAIT,
    )
    .await;
    server.begin_shutdown();
    b.wait_for(
        "a reconnect after the shutdown",
        "const s = document.getElementById('state'); \
         return s.dataset.state === 'reconnecting' ? s.textContent : null",
        WAIT,
    )
    .await;
    assert!(
        b.eval("return document.getElementById('error').hidden")
            .await
            == true
    );
}
