//! WASI 0.2 with nothing granted: what lets components from toolchains that
//! always import WASI (a Rust `wasm32-wasip2` std, componentize-py,
//! componentize-js) load, without giving them any authority.
//!
//! Each instance gets its own [`WasiCtx`] built by [`capability_less`]: no
//! preopened directories, no environment, no arguments, stdin empty, TCP, UDP
//! and name lookup switched off and a socket address check that refuses every
//! address. A denied call returns WASI's own error code to the guest; it does
//! not trap, so a node that handles the error still answers its frame. Clocks
//! and random are available (they grant no authority).
//!
//! stdout and stderr are [`LineLog`]s: bytes are split into lines, each line
//! cut at [`MAX_LOG_LINE`] (the rest until the newline is dropped) and sent to
//! the server log under target `plugin` with the session, pipeline and node
//! ids and `stream = "stdout"`/`"stderr"`, through the same per-instance
//! token bucket as the `log` import. A complete line is logged as soon as the
//! guest writes it; a partial line at the end of each call (`NodeInstance`
//! calls [`LineLog::flush_partial`]). At most `MAX_LOG_LINE` bytes per stream
//! are held.
//!
//! Which WASI interfaces a component may import is decided by name in
//! `component.rs` ([`is_provided_wasi_import`]): exactly the WASI 0.2
//! interfaces `wasmtime_wasi::p2::add_to_linker_sync` links, at any 0.2.x
//! minor version (the linker matches minor versions semver-wise).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::WasiCtx;

use super::store::{cut_log_line, LogBudget, LogContext, MAX_LOG_LINE};

/// The WASI 0.2 interfaces the linker provides (`add_to_linker_sync`), by
/// `package/interface`. Anything else named `wasi:` is refused by name.
pub const PROVIDED_WASI_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Most WASI resources (streams, pollables, sockets, ...) one instance may
/// hold at once: the table lives in host memory, outside the guest's memory
/// cap. A guest that passes it gets a trap (its instance is discarded).
/// CPython and a Rust std hold a handful.
pub const MAX_WASI_RESOURCES: usize = 4096;

/// An empty resource table capped at [`MAX_WASI_RESOURCES`].
pub(crate) fn resource_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_WASI_RESOURCES);
    table
}

/// True for `wasi:<pkg>/<iface>@0.2.<n>` where the interface is one the
/// linker provides; WASI 0.3, an unversioned name or an interface we do not
/// link (`wasi:http/...`) is false.
pub fn is_provided_wasi_import(name: &str) -> bool {
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    let minor_ok = version
        .strip_prefix("0.2.")
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()));
    minor_ok && PROVIDED_WASI_INTERFACES.contains(&interface)
}

/// A WASI context granting nothing; stdout and stderr go to `stdout`/`stderr`.
pub(crate) fn capability_less(stdout: LineLog, stderr: LineLog) -> WasiCtx {
    WasiCtx::builder()
        .stdout(stdout)
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

/// One guest output stream (stdout or stderr), logged line by line. Clones
/// share the same partial line (WASI hands the guest a fresh stream per
/// `get-stdout`, all of which must write to one place).
#[derive(Clone)]
pub(crate) struct LineLog(Arc<Mutex<LineState>>);

struct LineState {
    stream: &'static str,
    log: LogContext,
    budget: Arc<Mutex<LogBudget>>,
    partial: Vec<u8>,
    /// The current line passed `MAX_LOG_LINE`: drop bytes until its newline.
    overlong: bool,
}

impl LineLog {
    pub(crate) fn new(
        stream: &'static str,
        log: LogContext,
        budget: Arc<Mutex<LogBudget>>,
    ) -> Self {
        LineLog(Arc::new(Mutex::new(LineState {
            stream,
            log,
            budget,
            partial: Vec::new(),
            overlong: false,
        })))
    }

    fn write_bytes(&self, mut bytes: &[u8]) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        while !bytes.is_empty() {
            let (chunk, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (bytes.get(..at).unwrap_or_default(), true),
                None => (bytes, false),
            };
            let room = MAX_LOG_LINE.saturating_sub(state.partial.len());
            if !state.overlong {
                state
                    .partial
                    .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                state.overlong = chunk.len() > room;
            }
            if ended {
                state.emit();
            }
            bytes = bytes
                .get(chunk.len() + usize::from(ended)..)
                .unwrap_or_default();
        }
    }

    /// Logs what is left of an unterminated line (called after each call).
    pub(crate) fn flush_partial(&self) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.partial.is_empty() || state.overlong {
            state.emit();
        }
    }
}

impl LineState {
    fn emit(&mut self) {
        let bytes = std::mem::take(&mut self.partial);
        self.overlong = false;
        let taken = self
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take_at(Instant::now());
        if !taken {
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        let message = cut_log_line(text.strip_suffix('\r').unwrap_or(&text).to_string());
        let LogContext {
            session_id,
            pipeline_id,
            node_id,
        } = &self.log;
        let stream = self.stream;
        if stream == "stderr" {
            tracing::warn!(target: "plugin", session_id = %session_id, pipeline_id = %pipeline_id, node_id = %node_id, stream, "{message}");
        } else {
            tracing::info!(target: "plugin", session_id = %session_id, pipeline_id = %pipeline_id, node_id = %node_id, stream, "{message}");
        }
    }
}

impl IsTerminal for LineLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LineLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Writes never block and never fail: what the budget refuses is dropped.
const WRITE_PERMIT: usize = 64 << 10;

impl OutputStream for LineLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_linked_wasi_0_2_interfaces_are_allowed_by_name() {
        assert!(is_provided_wasi_import("wasi:io/streams@0.2.0"));
        assert!(is_provided_wasi_import("wasi:filesystem/preopens@0.2.9"));
        assert!(is_provided_wasi_import("wasi:sockets/tcp@0.2.12"));
        assert!(!is_provided_wasi_import("wasi:io/streams@0.3.0"));
        assert!(!is_provided_wasi_import("wasi:io/streams"));
        assert!(!is_provided_wasi_import("wasi:io/streams@0.2."));
        assert!(!is_provided_wasi_import("wasi:http/outgoing-handler@0.2.0"));
        assert!(!is_provided_wasi_import("wasi:clocks/timezone@0.2.12"));
        assert!(!is_provided_wasi_import("evil:net/raw@0.2.0"));
    }

    #[test]
    fn lines_are_split_capped_and_a_partial_line_is_held_until_flushed() {
        let budget = Arc::new(Mutex::new(LogBudget::new(100)));
        let out = LineLog::new("stdout", LogContext::default(), budget.clone());
        out.write_bytes(b"one\ntw");
        out.write_bytes(b"o\n");
        let long = vec![b'x'; 3 * MAX_LOG_LINE];
        out.write_bytes(&long);
        {
            let state = out.0.lock().unwrap_or_else(PoisonError::into_inner);
            assert_eq!(state.partial.len(), MAX_LOG_LINE);
            assert!(state.overlong);
        }
        out.write_bytes(b"\nrest");
        out.flush_partial();
        let state = out.0.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(state.partial.is_empty() && !state.overlong);
        drop(state);
        // one, two, the long line, rest: four lines through the shared budget.
        let mut left = budget.lock().unwrap_or_else(PoisonError::into_inner);
        let mut n = 0;
        while left.take_at(Instant::now()) {
            n += 1;
        }
        assert!((95..=96).contains(&n), "{n}");
    }
}
