//! `streamhost new-node`, end to end, as a new user meets it: with `streamhost serve` already
//! running (the real binary, an ephemeral port, hot reload on as by default), for each language
//! the real binary writes a node into a checkout, the real build script
//! (`scripts/build-plugins.sh`, what `make plugins` runs) builds it with the real toolchain
//! (cargo for wasm32, componentize-py, componentize-js), the running server picks the new
//! pipelines up by itself, and a WebSocket client sees each node answer
//! `{"node":NAME,"frame_index":n,"width":w,"height":h}`.
//!
//! The checkout is a trimmed copy of this one in a temporary directory: `wit/`, `scripts/`, the
//! SDK, `node-config` and the JavaScript toolchain's pins, a plugins workspace of just those two
//! crates (so only the new nodes build), and `pipelines/` empty. `plugins/target` and `.deps`
//! are links to this checkout's, so the build reuses compiled dependencies and installed
//! toolchains (about a minute in all on 2 cores, most of it componentize-py and the Rust link).
//! The server runs with a one-frame-a-second quota per session, so a second frame sent at once
//! is dropped: the next reply's `n` proves the node sees the client's frame numbers, dropped
//! frames counted, and not a count of its own calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const LANGS: [(&str, &str); 3] = [
    ("rust", "e2e_rust_node"),
    ("python", "e2e_python_node"),
    ("js", "e2e_js_node"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A checkout with the SDK and no nodes: what `new-node` and the build script need.
fn bare_checkout(root: &Path) {
    let repo = repo();
    for dir in [
        "wit",
        "scripts",
        "plugins/sdk/src",
        "plugins/node-config/src",
    ] {
        copy_dir(&repo.join(dir), &root.join(dir));
    }
    for file in [
        "plugins/Cargo.lock",
        "plugins/sdk/Cargo.toml",
        "plugins/node-config/Cargo.toml",
        "plugins/js-toolchain/package.json",
        "plugins/js-toolchain/package-lock.json",
        "plugins/js-toolchain/componentize.mjs",
    ] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::copy(repo.join(file), root.join(file)).unwrap();
    }
    // The workspace manifest as it is (profile, lints, pins), with only the two library crates.
    let workspace = std::fs::read_to_string(repo.join("plugins/Cargo.toml")).unwrap();
    let start = workspace.find("members = [").unwrap();
    let end = start + workspace[start..].find(']').unwrap() + 1;
    let trimmed = format!(
        "{}members = [\n    \"node-config\",\n    \"sdk\",\n]{}",
        &workspace[..start],
        &workspace[end..]
    );
    std::fs::write(root.join("plugins/Cargo.toml"), trimmed).unwrap();
    std::fs::create_dir(root.join("pipelines")).unwrap();
    std::fs::create_dir_all(repo.join("plugins/target")).unwrap();
    std::fs::create_dir_all(repo.join(".deps")).unwrap();
    std::os::unix::fs::symlink(repo.join("plugins/target"), root.join("plugins/target")).unwrap();
    std::os::unix::fs::symlink(repo.join(".deps"), root.join(".deps")).unwrap();
}

fn streamhost(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streamhost"));
    command
        .args(args)
        .env_remove("STREAMHOST_TENANTS_FILE")
        .env_remove("STREAMHOST_PIPELINES_DIR")
        .env_remove("STREAMHOST_PLUGIN_DIR");
    command
}

/// The server process, killed when the test ends, whether it passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `streamhost serve` on an ephemeral port; returns the process and its address, read from its
/// "streamhost listening" log line.
fn serve(root: &Path, plugins: &Path) -> (Server, String) {
    let mut child = streamhost(&["serve", "--listen", "127.0.0.1:0", "--pipelines"])
        .arg(root.join("pipelines"))
        .arg("--plugins")
        .arg(plugins)
        .env("STREAMHOST_MAX_SESSION_FPS", "1")
        .env("STREAMHOST_RELOAD", "watch")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let child = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if sent {
                continue; // keep draining, so the server never blocks on a full pipe
            }
            let Ok(log) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if log["message"] == "streamhost listening" {
                let _ = tx.send(log["listen"].as_str().unwrap_or_default().to_string());
                sent = true;
            } else if log["level"] == "WARN" || log["level"] == "ERROR" {
                eprintln!("server: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the server did not log its address within 120 s");
    (child, addr)
}

/// `GET /pipelines` from the server at `addr`, parsed.
fn pipelines(addr: &str) -> Value {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET /pipelines HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// Waits (up to 60 s) until every pipeline in `names` is listed as ready.
fn wait_ready(addr: &str, names: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = pipelines(addr);
        let ready = |name: &str| {
            list["pipelines"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["id"] == name && p["status"] == "ready"))
        };
        if names.iter().all(|n| ready(n)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all of {names:?} ready within 60 s: {list}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A JPEG of `w` x `h` with a gradient.
fn jpeg(w: usize, h: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 90])
        .collect();
    streamhost::nodes::jpeg_decode::encode_rgb(w, h, &pixels, 90.0).unwrap()
}

async fn recv(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("no reply within 30 s")
            .expect("the connection closed")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// One session on pipeline `name`: a frame answered, a frame dropped by the quota, and after a
/// second a frame of another size answered with its own index.
async fn answers(addr: &str, name: &str) {
    let url = format!("ws://{addr}/ws/video/stream?pipeline_id={name}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot connect: {e}"));
    ws.send(Message::binary(jpeg(64, 48))).await.unwrap();
    let first = recv(&mut ws).await;
    let n = first["frame_index"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name}: {first}"));
    assert_eq!(
        first["result"],
        json!({"node": name, "frame_index": n, "width": 64, "height": 48}),
        "{name}: {first}"
    );
    // At most one frame a second: this one is dropped, and counted.
    ws.send(Message::binary(jpeg(64, 48))).await.unwrap();
    let dropped = recv(&mut ws).await;
    assert_eq!(
        dropped,
        json!({"frame_index": n + 1, "dropped": true, "reason": "rate_limited"}),
        "{name}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.send(Message::binary(jpeg(40, 30))).await.unwrap();
    let third = recv(&mut ws).await;
    assert_eq!(
        third,
        json!({"frame_index": n + 2, "result": {"node": name, "frame_index": n + 2, "width": 40, "height": 30}}),
        "{name}"
    );
    let _ = ws.close(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_language_new_node_builds_as_written_and_answers_frames_on_a_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    bare_checkout(root);
    let built = root.join("out");
    std::fs::create_dir(&built).unwrap();
    // The server is up before the nodes exist, with no pipelines at all.
    let (server, addr) = serve(root, &built);

    for (lang, name) in LANGS {
        let out = streamhost(&["new-node", name, "--lang", lang, "--root"])
            .arg(root)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{lang}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("pipelines/{name}.toml")) && stdout.contains("make plugins"),
            "{stdout}"
        );
    }
    // The same name again is refused, with exit status 2 and nothing changed.
    let again = streamhost(&["new-node", "e2e_python_node", "--lang", "js", "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(!root.join("plugins/e2e_python_node/app.js").exists());

    let status = Command::new("bash")
        .arg(root.join("scripts/build-plugins.sh"))
        .arg(&built)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "scripts/build-plugins.sh failed: {status}"
    );
    for (_, name) in LANGS {
        assert!(built.join(format!("{name}.wasm")).is_file(), "{name}.wasm");
    }

    // Nothing restarted: the running server noticed the manifests and the components.
    let names = LANGS.map(|(_, name)| name);
    let poll = addr.clone();
    tokio::task::spawn_blocking(move || wait_ready(&poll, &names))
        .await
        .unwrap();
    let sessions = LANGS.map(|(_, name)| {
        let addr = addr.clone();
        tokio::spawn(async move { answers(&addr, name).await })
    });
    let mut failures = Vec::new();
    for session in sessions {
        if let Err(e) = session.await {
            failures.push(e.to_string());
        }
    }
    drop(server);
    assert!(failures.is_empty(), "{failures:#?}");
}
