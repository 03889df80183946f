//! The test harness: a real streamhost server on an ephemeral port, real
//! WebSocket clients (tokio-tungstenite), plugins built from source by this
//! crate's build script, JPEG frames encoded on the fly, and the server's JSON
//! logs captured exactly as an operator would see them.
//!
//! Test code may panic on a broken expectation; that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use streamhost::config::Config;
use streamhost::nodes::jpeg_decode::encode_rgb;
use streamhost::{serve, AppState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod webdriver;

/// Where the build script put the freshly built components.
pub fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("STREAMHOST_TEST_PLUGIN_DIR"))
}

/// How long any single expected message may take before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- manifests

/// decode -> one Wasm node, with an optional inline TOML config table.
pub fn wasm_pipeline(id: &str, component: &str, config: &str) -> String {
    format!(
        "id = \"{id}\"\ndescription = \"test pipeline {id}\"\n\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n\n\
         [[nodes]]\nid = \"node\"\nkind = \"wasm\"\ncomponent = \"{component}\"\ninputs = [\"decode\"]\nconfig = {{ {config} }}\n"
    )
}

/// The entry for pipeline `id` in a `/pipelines` listing.
pub fn find_pipeline<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {list}"))
}

/// The shipped frame_info pipeline, read from the repository.
pub fn shipped_pipeline(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../pipelines")
        .join(format!("{name}.toml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A slow pipeline: real CPU work in a Wasm node (about 2 ns an iteration).
pub fn slow_pipeline(id: &str, iterations: u64) -> String {
    wasm_pipeline(
        id,
        "fixture_slow.wasm",
        &format!("iterations = {iterations}"),
    )
}

/// How soon a running server must notice a changed file (the promise).
pub const RELOAD_WITHIN: Duration = Duration::from_secs(5);

/// How long a reload that must compile a component may take in tests: the
/// change is noticed within [`RELOAD_WITHIN`], but wasmtime compiles on one
/// process-wide thread pool, where another test's 18 MB CPython component
/// (20-40 s) may be ahead of it.
pub const RELOAD_WITH_COMPILE_WITHIN: Duration = Duration::from_secs(90);

/// Reload settings for tests: poll every 100 ms, settle for 50 ms.
pub fn fast_reload(c: &mut Config) {
    c.reload_poll = Duration::from_millis(100);
    c.reload_debounce = Duration::from_millis(50);
}

/// Replaces `path` as deploy tools and many editors do: writes a dot file
/// beside it, then renames it over `path` (a new inode, never half-written).
pub fn write_then_rename(path: &std::path::Path, text: &[u8]) {
    let name = path.file_name().unwrap().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ---------------------------------------------------------------- frames

/// Writes `dir/tenants.toml` with one tenant `id` whose token is `token`,
/// allowed every pipeline; returns its path.
pub fn one_tenant_file(dir: &std::path::Path, id: &str, token: &str) -> PathBuf {
    let path = dir.join("tenants.toml");
    let digest = streamhost::tenants::token_digest_hex(token);
    std::fs::write(
        &path,
        format!("[[tenants]]\nid = \"{id}\"\ntoken_sha256 = [\"{digest}\"]\npipelines = [\"*\"]\n"),
    )
    .unwrap();
    path
}

/// A baseline JPEG of one solid colour.
pub fn solid_jpeg(w: usize, h: usize, rgb: [u8; 3]) -> Vec<u8> {
    let pixels: Vec<u8> = (0..w * h).flat_map(|_| rgb).collect();
    encode_rgb(w, h, &pixels, 95.0).unwrap()
}

/// A JPEG with a diagonal gradient (something for detectors to chew on).
pub fn gradient_jpeg(w: usize, h: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 90])
        .collect();
    encode_rgb(w, h, &pixels, 90.0).unwrap()
}

// ---------------------------------------------------------------- server

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with default limits serving the given `(file stem, manifest)` pairs.
    pub async fn start(manifests: &[(&str, &str)]) -> TestServer {
        Self::start_with(manifests, |_| {}).await
    }

    pub async fn start_with(
        manifests: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_on("127.0.0.1:0", manifests, tweak).await
    }

    /// Like [`start_with`](Self::start_with), listening on `bind` (`IP:0` for an ephemeral port).
    pub async fn start_on(
        bind: &str,
        manifests: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in manifests {
            std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
        }
        let mut config = Config {
            pipelines_dir: dir.path().to_path_buf(),
            plugin_dir: plugin_dir(),
            model_dir: PathBuf::from(env!("STREAMHOST_TEST_MODEL_DIR")),
            ort_lib: PathBuf::from(env!("STREAMHOST_TEST_ORT_LIB")),
            int8_gate_frames: PathBuf::from(env!("STREAMHOST_TEST_MODEL_DIR")).join("int8-gate"),
            ..Config::default()
        };
        tweak(&mut config);
        let state = tokio::task::spawn_blocking(move || AppState::build(config))
            .await
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// The directory of manifests this server loaded, and watches.
    pub fn pipelines_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The entry for `id` in `/pipelines`, if listed.
    pub async fn listing(&self, id: &str) -> Option<Value> {
        let list = self.get_json("/pipelines").await;
        list["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
    }

    /// Polls `/pipelines` until `id`'s entry (or its absence) satisfies `want`,
    /// within [`RELOAD_WITHIN`] (the reload promise); returns that entry.
    pub async fn wait_listing(
        &self,
        id: &str,
        what: &str,
        want: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        self.wait_listing_within(RELOAD_WITHIN, id, what, want)
            .await
    }

    /// Like [`wait_listing`](Self::wait_listing), within `within`.
    pub async fn wait_listing_within(
        &self,
        within: Duration,
        id: &str,
        what: &str,
        want: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let entry = self.listing(id).await;
            if want(entry.as_ref()) {
                return entry;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{id}: not {what} within {within:?}; listed as {entry:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws/video/stream{query}", self.addr)
    }

    /// Opens a session on `pipeline`.
    pub async fn connect(&self, pipeline: &str) -> Client {
        self.connect_url(&self.ws_url(&format!("?pipeline_id={pipeline}")))
            .await
    }

    pub async fn connect_url(&self, url: &str) -> Client {
        let (ws, _resp) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client { ws }
    }

    /// Opens a session with extra request headers; a refused upgrade comes
    /// back as `Err((HTTP status, JSON body))`.
    pub async fn try_connect(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Client, Option<String>), (u16, Value)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
        let mut req = self.ws_url(query).into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, resp)) => {
                let protocol = resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap().to_string());
                Ok((Client { ws }, protocol))
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp.body().clone().unwrap_or_default();
                let json = serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("refusal body is not JSON ({e}): {body:?}"));
                Err((resp.status().as_u16(), json))
            }
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    /// Opens a session with `Authorization: Bearer <token>`.
    pub async fn connect_as(&self, token: &str, pipeline: &str) -> Client {
        let auth = format!("Bearer {token}");
        match self
            .try_connect(
                &format!("?pipeline_id={pipeline}"),
                &[("authorization", &auth)],
            )
            .await
        {
            Ok((client, _)) => client,
            Err(refused) => panic!("refused: {refused:?}"),
        }
    }

    /// A raw TCP connection that has sent a WebSocket upgrade request for
    /// `pipeline` and read nothing yet: for clients that misbehave below the
    /// WebSocket layer.
    pub async fn raw_upgrade(&self, pipeline: &str) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "GET /ws/video/stream?pipeline_id={pipeline} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.addr
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        stream
    }

    /// A plain HTTP/1.1 GET: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        try_http_get(self.addr, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Like [`get`](Self::get), but a connection the server cuts (or refuses) is an `Err`.
    pub async fn try_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        try_http_get(self.addr, path).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The value of the sample whose line starts with `series` (e.g.
    /// `stream_frames_processed{pipeline="p"}`), from `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
    }

    /// Polls until `series` reaches `want` (metrics update just after replies are sent).
    pub async fn wait_metric(&self, series: &str, want: f64) -> f64 {
        let mut last = None;
        for _ in 0..200 {
            last = self.metric(series).await;
            if last == Some(want) {
                return want;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{series} stayed at {last:?}, wanted {want}");
    }

    /// Triggers graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts down and waits for `serve` to return.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    pub async fn wait_stopped(&mut self) {
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// This machine's first IPv4 address that is not loopback (`hostname -I`), if any:
/// where a phone or laptop on the LAN would reach the server.
pub fn lan_ipv4() -> Option<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
}

/// A self-signed certificate and its key (PEM files in `dir`) for `localhost`
/// and the given IP addresses, made with the `openssl` command the README
/// shows for a LAN: `(cert, key)`.
pub fn self_signed_cert(dir: &std::path::Path, ips: &[&str]) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let mut san = "subjectAltName=DNS:localhost".to_string();
    for ip in ips {
        san.push_str(&format!(",IP:{ip}"));
    }
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=streamhost test"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-addext")
        .arg(&san)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A TLS connection to `addr` that trusts only `cert` (a PEM file), for `name`.
pub async fn tls_connect(
    addr: SocketAddr,
    cert: &std::path::Path,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
}

/// A response from [`http_request`]: status, header lines (names lower-cased) and body.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with its own headers and body, read up to its
/// `Content-Length` (or the connection's end): for routes whose headers
/// matter, and for chromedriver, which may keep the connection open.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if method != "GET" || !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            let n = stream.read(&mut buf).await?;
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw);
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                });
                if length.is_some_and(|len| rest.len() >= len) {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(RECV_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::other(format!("no answer within {RECV_TIMEOUT:?}")))??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

async fn try_http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(RECV_TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other(format!("no answer within {RECV_TIMEOUT:?}")))??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------- client

/// What arrived on a client's socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Json(Value),
    Close(Option<u16>),
    /// The stream ended without a close frame.
    Ended,
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send_frame(&mut self, frame: Vec<u8>) {
        self.ws.send(Message::Binary(frame.into())).await.unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next JSON message or close, skipping pings and pongs.
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(RECV_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("nothing received within {RECV_TIMEOUT:?}"))
    }

    /// Like [`recv`](Self::recv) but `None` if nothing arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match msg {
                None => Incoming::Ended,
                Some(Err(_)) => Incoming::Ended,
                Some(Ok(Message::Text(t))) => Incoming::Json(
                    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}")),
                ),
                Some(Ok(Message::Close(frame))) => {
                    Incoming::Close(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(Message::Binary(b))) => {
                    panic!("server sent a binary message of {} bytes", b.len())
                }
                Some(Ok(_)) => continue,
            });
        }
    }

    pub async fn recv_json(&mut self) -> Value {
        match self.recv().await {
            Incoming::Json(v) => v,
            other => panic!("expected a JSON message, got {other:?}"),
        }
    }

    /// Expects the server to close with `code` next.
    pub async fn expect_close(&mut self, code: u16) {
        match self.recv().await {
            Incoming::Close(Some(c)) => assert_eq!(c, code, "close code"),
            other => panic!("expected close {code}, got {other:?}"),
        }
    }

    /// The healthy-neighbour check the abuse tests repeat: a frame on this
    /// (`frame_info`) session is answered as result number `frame_index`.
    pub async fn assert_serves(&mut self, frame_index: u64) {
        let r = self.roundtrip(gradient_jpeg(48, 32)).await;
        assert_eq!(r["frame_index"], frame_index, "{r}");
        assert_eq!(r["result"]["width"], 48, "{r}");
    }

    /// Sends `frame` and returns the reply for it (a result, dropped or error).
    pub async fn roundtrip(&mut self, frame: Vec<u8>) -> Value {
        self.send_frame(frame).await;
        self.recv_json().await
    }

    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
        // Drain until the server's close reply or the end of the stream.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

// ---------------------------------------------------------------- logs

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<SharedBuf> = OnceLock::new();

/// Installs (once per process) the server's own JSON log layer, writing to memory.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer;
        let buf = SharedBuf::default();
        let writer = buf.clone();
        let _ = tracing_subscriber::registry()
            .with(
                streamhost::logging::json_layer(move || writer.clone())
                    .with_filter(tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
        buf
    });
}

/// Every captured log line, parsed.
pub fn log_lines() -> Vec<Value> {
    let Some(buf) = LOGS.get() else {
        return Vec::new();
    };
    let bytes = buf.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Captured log lines whose `message` is `message` and whose fields include every `(key, value)`.
pub fn logs_where(message: &str, fields: &[(&str, Value)]) -> Vec<Value> {
    log_lines()
        .into_iter()
        .filter(|l| l.get("message").and_then(Value::as_str) == Some(message))
        .filter(|l| fields.iter().all(|(k, v)| l.get(*k) == Some(v)))
        .collect()
}

/// Waits (briefly) for a log line to appear; logs are written just after replies.
pub async fn wait_log(message: &str, fields: &[(&str, Value)]) -> Value {
    for _ in 0..200 {
        if let Some(line) = logs_where(message, fields).into_iter().next() {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no log line {message:?} with {fields:?}");
}
