//! The real HTTP + WebSocket handler (`server::serve_connection`, the router,
//! `ws::upgrade` and the session loop) over an in-memory stream.
//!
//! Each input is one connection: a valid upgrade request for
//! `/ws/video/stream`, then the input read as a script of client WebSocket
//! frames (see [`script`]): binary frames with fuzzed or real JPEGs, text,
//! ping, pong, close, fragmented and oversized messages, the odd protocol
//! violation (unmasked, reserved bits, bad opcode, no FIN) and raw bytes. The
//! client then half-closes and reads everything the server sends.
//!
//! Asserted: the server answers 101, every frame it sends is well-formed and
//! unmasked, every text message is a JSON object with `frame_index`, `error`
//! or `warning`, nothing but a close follows a close, it never sends binary,
//! and the connection ends within [`CONNECTION_BOUND`]. A panic in any server
//! task aborts the process (libFuzzer's panic hook), so it is a crash too.
//!
//! `STREAMHOST_FUZZ_VERBOSE=1` prints what the server sent for each input
//! (e.g. `fuzz/target/<triple>/release/message_handler fuzz/corpus/message_handler/*`).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use streamhost::{AppState, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

/// The longest one connection may take, start to end (no frame takes long:
/// a decode is capped at 4 MP and the Wasm call limit is 1 s).
const CONNECTION_BOUND: Duration = Duration::from_secs(10);
/// Frame limit for the fuzzed server: small, so `frame_too_large` and the
/// WebSocket layer's message limit (twice this) are reachable.
const MAX_FRAME_BYTES: usize = 64 << 10;
/// Most bytes of server output read per connection.
const READ_CAP: usize = 8 << 20;

struct Harness {
    rt: Runtime,
    state: AppState,
    /// Whether `frame_info.wasm` was found, so the `wasm` pipeline exists.
    wasm: bool,
    /// A valid 16x16 JPEG, sent (or mutated) by script op 1.
    jpeg: Vec<u8>,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

const NATIVE_MANIFEST: &str = r#"
id = "native"
description = "fuzz: decode only"
[[nodes]]
id = "decode"
kind = "jpeg_decode"
config = { format = "gray8", min_long_side = 8 }
"#;

const WASM_MANIFEST: &str = r#"
id = "wasm"
description = "fuzz: decode + frame_info.wasm"
[[nodes]]
id = "decode"
kind = "jpeg_decode"
[[nodes]]
id = "info"
kind = "wasm"
component = "frame_info.wasm"
inputs = ["decode"]
"#;

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("streamhost-fuzz-{}", std::process::id()));
        let plugin_dir = std::env::var_os("STREAMHOST_PLUGIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
        let plugin_dir = plugin_dir.canonicalize().unwrap_or(plugin_dir);
        let wasm = plugin_dir.join("frame_info.wasm").is_file();
        std::fs::create_dir_all(&dir).expect("temp pipelines dir");
        std::fs::write(dir.join("native.toml"), NATIVE_MANIFEST).expect("write manifest");
        if wasm {
            std::fs::write(dir.join("wasm.toml"), WASM_MANIFEST).expect("write manifest");
        } else {
            eprintln!(
                "message_handler: no frame_info.wasm in {} (run `make plugins`); fuzzing the native pipeline only",
                plugin_dir.display()
            );
        }
        let config = Config {
            pipelines_dir: dir.clone(),
            plugin_dir,
            max_frame_bytes: MAX_FRAME_BYTES,
            max_frame_pixels: 4_000_000,
            onnx_threads: 1,
            onnx_sessions: 1,
            ..Config::default()
        };
        let state = AppState::build(config).expect("AppState::build");
        let _ = std::fs::remove_dir_all(&dir);
        for p in state.registry.all() {
            assert_eq!(
                p.status,
                streamhost::pipeline::PipelineStatus::Ready,
                "fuzz pipeline {} failed to load",
                p.id
            );
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let rgb: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let jpeg = streamhost::nodes::jpeg_decode::encode_rgb(16, 16, &rgb, 80.0).expect("encode");
        Harness {
            rt,
            state,
            wasm,
            jpeg,
        }
    })
}

/// Reads the fuzz input front to back; runs dry as zeros/empty.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn len(&mut self, long: bool) -> usize {
        let hi = self.byte().unwrap_or(0) as usize;
        if long {
            hi << 8 | self.byte().unwrap_or(0) as usize
        } else {
            hi
        }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const FIN: u8 = 0x80;

/// How one frame is sent: well-formed unless a mangling asks otherwise.
#[derive(Clone, Copy)]
struct Framing {
    masked: bool,
    rsv: u8,
    opcode: Option<u8>,
    no_fin: bool,
    key: [u8; 4],
}

fn frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], f: Framing) {
    let fin = if fin && !f.no_fin { FIN } else { 0 };
    out.push(fin | f.rsv | f.opcode.unwrap_or(opcode) & 0x0F);
    let mask_bit = if f.masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if f.masked {
        out.extend_from_slice(&f.key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ f.key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
}

/// One connection's worth of client bytes.
struct Script {
    /// The HTTP upgrade request.
    request: Vec<u8>,
    /// Everything sent after the 101.
    frames: Vec<u8>,
    /// Binary messages sent, each of which the server answers (`usize::MAX`
    /// when a mangled frame makes that unknowable).
    binaries: usize,
}

/// The request line's pipeline, then the frames, from the fuzz input.
///
/// Byte 0 picks the pipeline (`native`, `wasm`, an unknown id, none). Then
/// each op is a selector byte `s`: `s & 7` is the kind, `s & 8` asks for a
/// two-byte length, and `s >= 0xC0` mangles the frame by `(s >> 4) & 3`
/// (unmasked, RSV1 set, opcode from the next byte, FIN cleared). Kinds:
/// 0 binary, 1 the valid JPEG (long: with one byte overwritten), 2 text,
/// 3 ping, 4 pong, 5 close, 6 a binary message in two fragments (long: a ping
/// between them), 7 raw bytes (long: a JPEG-marked frame of `len * 8` bytes).
fn script(data: &[u8], h: &Harness) -> Script {
    let mut c = Cursor(data);
    let query = match c.byte().unwrap_or(0) % 8 {
        0..=3 => "?pipeline_id=native",
        4 | 5 if h.wasm => "?pipeline_id=wasm",
        4 | 5 => "?pipeline_id=native",
        6 => "?pipeline_id=no-such-pipeline",
        _ => "",
    };
    let request = format!(
        "GET /ws/video/stream{query} HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    let mut out = Vec::new();
    let mut binaries = 0;
    let mut n = 0u8;
    while let Some(s) = c.byte() {
        n = n.wrapping_add(1);
        let long = s & 8 != 0;
        let mut f = Framing {
            masked: true,
            rsv: 0,
            opcode: None,
            no_fin: false,
            key: [0x37 ^ n, 0xFA, 0x21 ^ s, 0x3D],
        };
        if s >= 0xC0 {
            binaries = usize::MAX; // no telling what the server makes of it
            match (s >> 4) & 3 {
                0 => f.masked = false,
                1 => f.rsv = 0x40,
                2 => f.opcode = Some(c.byte().unwrap_or(0)),
                _ => f.no_fin = true,
            }
        }
        match s & 7 {
            0 => {
                let len = c.len(long);
                frame(&mut out, true, BINARY, c.take(len), f);
                binaries = binaries.saturating_add(1);
            }
            1 => {
                let mut jpeg = h.jpeg.clone();
                if long {
                    let at = c.byte().unwrap_or(0) as usize % jpeg.len();
                    jpeg[at] = c.byte().unwrap_or(0);
                }
                frame(&mut out, true, BINARY, &jpeg, f);
                binaries = binaries.saturating_add(1);
            }
            2 => {
                let len = c.len(long);
                frame(&mut out, true, TEXT, c.take(len), f);
            }
            3 => {
                let len = c.len(long);
                frame(&mut out, true, PING, c.take(len), f);
            }
            4 => {
                let len = c.len(long);
                frame(&mut out, true, PONG, c.take(len), f);
            }
            5 => {
                let len = c.len(long);
                frame(&mut out, true, CLOSE, c.take(len), f);
            }
            6 => {
                let len = c.len(false);
                let payload = c.take(len);
                let (a, b) = payload.split_at(payload.len() / 2);
                frame(&mut out, false, BINARY, a, f);
                if long {
                    frame(&mut out, true, PING, b"between", f);
                }
                frame(&mut out, true, CONTINUATION, b, f);
                binaries = binaries.saturating_add(1);
            }
            _ if long => {
                let len = (c.len(true) * 8).max(4);
                let mut big = vec![0u8; len];
                big[..2].copy_from_slice(&[0xFF, 0xD8]);
                big[len - 2..].copy_from_slice(&[0xFF, 0xD9]);
                frame(&mut out, true, BINARY, &big, f);
                binaries = binaries.saturating_add(1);
            }
            _ => {
                let len = c.len(false);
                out.extend_from_slice(c.take(len));
                binaries = usize::MAX;
            }
        }
    }
    Script {
        request,
        frames: out,
        binaries,
    }
}

/// Checks everything the server sent on one connection.
fn check_replies(out: &[u8], capped: bool) {
    let Some(head_end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        panic!(
            "no complete HTTP response: {:?}",
            String::from_utf8_lossy(&out[..out.len().min(200)])
        );
    };
    let head = String::from_utf8_lossy(&out[..head_end]);
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "upgrade not accepted: {head}"
    );
    let mut rest = &out[head_end + 4..];
    let mut closed = false;
    let mut message: Option<Vec<u8>> = None;
    while !rest.is_empty() {
        let Some((fin, opcode, payload, after)) = parse_frame(rest) else {
            assert!(capped, "truncated server frame: {rest:?}");
            return;
        };
        rest = after;
        assert!(!closed, "server sent opcode {opcode} after its close frame");
        match opcode {
            TEXT | CONTINUATION => {
                let mut buf = match (opcode, message.take()) {
                    (TEXT, None) => Vec::new(),
                    (CONTINUATION, Some(buf)) => buf,
                    _ => panic!("server fragmented a message wrongly"),
                };
                buf.extend_from_slice(payload);
                if fin {
                    check_text(&buf);
                } else {
                    message = Some(buf);
                }
            }
            CLOSE => {
                closed = true;
                check_close(payload);
            }
            PING | PONG => {}
            other => panic!("server sent opcode {other:#x}"),
        }
    }
}

/// One server frame: (fin, opcode, payload, the rest), or `None` if incomplete.
fn parse_frame(buf: &[u8]) -> Option<(bool, u8, &[u8], &[u8])> {
    let (&b0, rest) = buf.split_first()?;
    let (&b1, mut rest) = rest.split_first()?;
    assert_eq!(b0 & 0x70, 0, "server set reserved bits: {b0:#x}");
    assert_eq!(b1 & 0x80, 0, "server masked a frame");
    let len = match b1 & 0x7F {
        126 => {
            let (n, r) = rest.split_at_checked(2)?;
            rest = r;
            u16::from_be_bytes([n[0], n[1]]) as usize
        }
        127 => {
            let (n, r) = rest.split_at_checked(8)?;
            rest = r;
            usize::try_from(u64::from_be_bytes(n.try_into().ok()?)).ok()?
        }
        n => n as usize,
    };
    let (payload, rest) = rest.split_at_checked(len)?;
    Some((b0 & FIN != 0, b0 & 0x0F, payload, rest))
}

fn check_text(text: &[u8]) {
    let value: serde_json::Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => panic!(
            "server text is not JSON ({e}): {:?}",
            String::from_utf8_lossy(text)
        ),
    };
    let Some(obj) = value.as_object() else {
        panic!("server text is not a JSON object: {value}");
    };
    assert!(
        ["frame_index", "error", "warning"]
            .iter()
            .any(|k| obj.contains_key(*k)),
        "server reply has none of frame_index/error/warning: {value}"
    );
}

fn check_close(payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    assert!(payload.len() >= 2, "close frame with a 1-byte payload");
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    assert!(
        (1000..5000).contains(&code) && ![1004, 1005, 1006, 1015].contains(&code),
        "server sent close code {code}"
    );
    assert!(
        std::str::from_utf8(&payload[2..]).is_ok(),
        "close reason is not UTF-8"
    );
}

/// What the reader has seen so far: replies carrying a `frame_index`, and
/// whether the server has closed (a close frame or the end of the stream).
#[derive(Clone, Copy, Default)]
struct Progress {
    answered: usize,
    closed: bool,
}

/// After its last frame the client waits (so in-flight frames get their
/// results) until every binary message is answered, the server closes, or
/// nothing arrives for this long; then it half-closes, which ends the session.
const LINGER: Duration = Duration::from_millis(50);

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let script = script(data, h);
    let state = h.state.clone();
    let (out, capped) = h.rt.block_on(async move {
        let (client, server) = tokio::io::duplex(64 << 10);
        let serving = tokio::spawn(streamhost::server::serve_connection(server, state));
        let (mut rd, mut wr) = tokio::io::split(client);
        // Frames follow the 101, as RFC 6455 has clients do (and hyper closes a
        // connection whose client half-closes before the response).
        let (upgraded_tx, upgraded_rx) = tokio::sync::oneshot::channel::<()>();
        let (progress_tx, mut progress) = tokio::sync::watch::channel(Progress::default());
        let Script {
            request,
            frames,
            binaries,
        } = script;
        let write = async move {
            // The server may close first; its refusals are what is checked.
            if wr.write_all(&request).await.is_ok()
                && upgraded_rx.await.is_ok()
                && wr.write_all(&frames).await.is_ok()
            {
                // Lingering only pays when every reply is expected; a mangled
                // script usually has the server close, or wait for more bytes.
                while binaries != usize::MAX {
                    let p = *progress.borrow_and_update();
                    if p.closed || p.answered >= binaries {
                        break;
                    }
                    match tokio::time::timeout(LINGER, progress.changed()).await {
                        Ok(Ok(())) => {}
                        _ => break,
                    }
                }
                let _ = wr.shutdown().await;
            }
            wr
        };
        let read = async move {
            let mut out = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            let mut upgraded = Some(upgraded_tx);
            let mut frames_at = None;
            let mut p = Progress::default();
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                if n == 0 {
                    p.closed = true;
                    let _ = progress_tx.send(p);
                    return (out, false);
                }
                out.extend_from_slice(&buf[..n]);
                if frames_at.is_none() {
                    if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                        frames_at = Some(end + 4);
                        let _ = upgraded.take().map(|tx| tx.send(()));
                    }
                }
                if let Some(at) = frames_at.as_mut() {
                    while let Some((_, opcode, payload, rest)) = parse_frame(&out[*at..]) {
                        *at = out.len() - rest.len();
                        match opcode {
                            CLOSE => p.closed = true,
                            TEXT if payload.windows(13).any(|w| w == b"\"frame_index\"") => {
                                p.answered += 1
                            }
                            _ => {}
                        }
                    }
                    let _ = progress_tx.send(p);
                }
                if out.len() >= READ_CAP {
                    return (out, true);
                }
            }
        };
        let ended =
            tokio::time::timeout(CONNECTION_BOUND, async { tokio::join!(write, read) }).await;
        let Ok((_wr, read)) = ended else {
            panic!("connection still open after {CONNECTION_BOUND:?}");
        };
        if tokio::time::timeout(CONNECTION_BOUND, serving)
            .await
            .is_err()
        {
            panic!("serve_connection still running after {CONNECTION_BOUND:?}");
        }
        read
    });
    if std::env::var_os("STREAMHOST_FUZZ_VERBOSE").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out).escape_debug());
    }
    check_replies(&out, capped);
});
