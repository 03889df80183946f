//! One streaming session: connect, run a sender and a reader side by side, drain, close.
//!
//! The socket is split in two. The **sender** task paces frames (`--fps`, or one at a time
//! with `--wait`) and owns the write half; the **reader** task owns the read half, prints and
//! classifies every reply. They share the [`Tally`] (the sender stamps each frame's send time
//! there *before* the frame reaches the socket, so a reply can never arrive ahead of its stamp)
//! and a `watch` channel through which the reader announces how many frames were answered and
//! whether the server has gone. The reader never waits on the sender, so replies are read as
//! they come even while the sender is blocked on pacing or a full socket; the sender consults
//! the watch only in `--wait` mode, when draining, and to stop early if the server closed.
//!
//! Every wait is bounded: connecting ([`CONNECT_TIMEOUT`]), each send and, in `--wait` mode,
//! each reply (`--drain-timeout-secs`), the drain after the last frame (same), and the close
//! handshake ([`CLOSE_TIMEOUT`]). The session ends with a normal close frame from the client
//! unless the server closed first, which it does after a fatal error.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::reply::{self, Reply};
use crate::summary::Tally;

/// How long the TCP connect plus WebSocket handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the server's close frame (and end of stream) after ours.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What to send, where, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Full URL including `pipeline_id`.
    pub url: String,
    pub token: Option<String>,
    /// The frames' bytes, as [`streamhost_load::load_frames`] read them.
    pub frames: Vec<Bytes>,
    /// Frames to send in all, cycling through `frames`.
    pub total: u64,
    /// Pause between frames; `None` sends as fast as the socket allows.
    pub interval: Option<Duration>,
    pub wait: bool,
    pub quiet: bool,
    pub drain_timeout: Duration,
}

/// How a session that connected ended.
#[derive(Debug)]
pub struct Ending {
    pub tally: Tally,
    /// Connection-level trouble (lost connection, server stopped answering or closed without
    /// a fatal error), separate from anything the server reported in-band.
    pub problem: Option<String>,
    /// The code of the server's close frame when the server closed first (1001: it is
    /// shutting down, which `--reconnect` answers by connecting again).
    pub server_close: Option<u16>,
}

/// Reader progress, published to the sender.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Replies carrying a `frame_index` (result, dropped or per-frame error).
    answered: u64,
    /// The read half has ended: the server closed, or the connection failed.
    reader_done: bool,
}

/// How the read half ended.
#[derive(Debug)]
enum ReaderEnd {
    /// The stream ended; `close` describes the server's close frame, if one came.
    Ended {
        close: Option<String>,
        code: Option<u16>,
        after_our_close: bool,
    },
    Failed {
        error: String,
        after_our_close: bool,
    },
}

fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    // A panic elsewhere cannot leave the counters half-updated in a way that matters here.
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes one line to stdout, ignoring a closed pipe (`| head`) instead of panicking.
pub fn print_line(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Connects and streams the plan. `Err` only when the connection could not be made.
pub async fn run(plan: Plan) -> Result<Ending> {
    let mut request = plan
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("bad URL {}", plan.url))?;
    if let Some(token) = &plan.token {
        let value = streamhost_load::bearer_auth_header(token)
            .context("token is not a valid header value")?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let (ws, _response) = timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| anyhow!("connecting to {} timed out", plan.url))?
        // Display only: tungstenite's error repeats its source, which `{:#}` would print twice.
        .map_err(|e| anyhow!("connecting to {}: {e}", plan.url))?;
    let (sink, stream) = ws.split();

    let tally = Arc::new(Mutex::new(Tally::new()));
    let close_sent = Arc::new(AtomicBool::new(false));
    let (progress_tx, progress_rx) = watch::channel(Progress::default());

    let mut reader = tokio::spawn(read_replies(
        stream,
        Arc::clone(&tally),
        progress_tx,
        Arc::clone(&close_sent),
        plan.quiet,
    ));
    let sender = tokio::spawn(send_frames(
        sink,
        plan,
        Arc::clone(&tally),
        progress_rx,
        close_sent,
    ));

    let mut problems = Vec::new();
    match sender.await {
        Ok(Some(p)) => problems.push(p),
        Ok(None) => {}
        Err(e) => problems.push(format!("sender task failed: {e}")),
    }
    let reader_end = match timeout(CLOSE_TIMEOUT, &mut reader).await {
        Ok(Ok(end)) => Some(end),
        Ok(Err(e)) => {
            problems.push(format!("reader task failed: {e}"));
            None
        }
        Err(_) => {
            reader.abort();
            problems.push("server did not complete the close handshake".to_string());
            None
        }
    };
    let fatal = lock(&tally).fatal.is_some();
    let server_close = match &reader_end {
        Some(ReaderEnd::Ended {
            after_our_close: false,
            code,
            ..
        }) => *code,
        _ => None,
    };
    match reader_end {
        Some(ReaderEnd::Ended {
            after_our_close: false,
            close,
            ..
        }) if !fatal => problems.push(match close {
            Some(c) => format!("server closed the connection early ({c})"),
            None => "server closed the connection early".to_string(),
        }),
        Some(ReaderEnd::Failed {
            error,
            after_our_close: false,
        }) => problems.push(format!("connection lost: {error}")),
        _ => {}
    }

    let tally = Arc::try_unwrap(tally)
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .unwrap_or_else(|shared| std::mem::take(&mut *lock(&shared)));
    Ok(Ending {
        tally,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
        server_close,
    })
}

/// Sends the frames, drains, then sends a close frame. Returns a problem, if one stopped it.
async fn send_frames(
    mut sink: SplitSink<Ws, Message>,
    plan: Plan,
    tally: Arc<Mutex<Tally>>,
    mut progress: watch::Receiver<Progress>,
    close_sent: Arc<AtomicBool>,
) -> Option<String> {
    let mut ticker = plan.interval.map(|period| {
        let mut t = tokio::time::interval(period);
        // After a late tick, keep a full period before the next send rather than bursting.
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let mut problem = None;
    let mut sent: u64 = 0;

    for frame in plan.frames.iter().cycle().take(cycle_len(plan.total)) {
        if plan.wait && sent > 0 {
            let answered = timeout(
                plan.drain_timeout,
                progress.wait_for(|p| p.reader_done || p.answered >= sent),
            )
            .await;
            if answered.is_err() {
                problem = Some(format!(
                    "no reply to frame {sent} within {}s",
                    plan.drain_timeout.as_secs_f64()
                ));
                break;
            }
        }
        if let Some(ticker) = ticker.as_mut() {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = progress.wait_for(|p| p.reader_done) => {}
            }
        }
        if reader_gone(&progress) {
            // The server closed (normally after a fatal error); the reader reports why.
            break;
        }
        sent += 1;
        lock(&tally).record_sent(sent, Instant::now());
        match timeout(
            plan.drain_timeout,
            sink.send(Message::Binary(frame.clone())),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if !reader_gone(&progress) {
                    problem = Some(format!("sending frame {sent}: {e}"));
                }
                break;
            }
            Err(_) => {
                problem = Some(format!(
                    "server took no data for {}s (frame {sent})",
                    plan.drain_timeout.as_secs_f64()
                ));
                break;
            }
        }
    }

    if problem.is_none() {
        let drained = timeout(
            plan.drain_timeout,
            progress.wait_for(|p| p.reader_done || p.answered >= sent),
        )
        .await;
        if drained.is_err() {
            problem = Some(format!(
                "{} frame(s) still unanswered {}s after the last one was sent",
                lock(&tally).outstanding(),
                plan.drain_timeout.as_secs_f64()
            ));
        }
    }

    close_sent.store(true, Ordering::SeqCst);
    if !reader_gone(&progress) {
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into(),
        }));
        match timeout(CLOSE_TIMEOUT, sink.send(close)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("note: sending close frame: {e}"),
            Err(_) => eprintln!("note: sending close frame timed out"),
        }
    }
    problem
}

/// Whether the read half has ended (or its task is gone altogether).
fn reader_gone(progress: &watch::Receiver<Progress>) -> bool {
    progress.borrow().reader_done || progress.has_changed().is_err()
}

/// `Iterator::take` wants a `usize`; a total beyond it is unreachable in practice anyway.
fn cycle_len(total: u64) -> usize {
    usize::try_from(total).unwrap_or(usize::MAX)
}

/// Reads, prints and tallies replies until the stream ends.
async fn read_replies(
    mut stream: SplitStream<Ws>,
    tally: Arc<Mutex<Tally>>,
    progress: watch::Sender<Progress>,
    close_sent: Arc<AtomicBool>,
    quiet: bool,
) -> ReaderEnd {
    let mut close = None;
    let mut code = None;
    let mut after_our_close = None;
    let end = loop {
        let msg = stream.next().await;
        let reply = match msg {
            Some(Ok(Message::Text(text))) => {
                if !quiet {
                    print_line(text.as_str());
                }
                reply::parse(text.as_str())
            }
            Some(Ok(Message::Binary(data))) => {
                if !quiet {
                    print_line(&format!(
                        "<unexpected binary message, {} bytes>",
                        data.len()
                    ));
                }
                Reply::Unrecognized
            }
            Some(Ok(Message::Close(frame))) => {
                after_our_close.get_or_insert(close_sent.load(Ordering::SeqCst));
                code = frame.as_ref().map(|f| u16::from(f.code));
                close = Some(match frame {
                    Some(f) if f.reason.is_empty() => format!("close code {}", f.code),
                    Some(f) => format!("close code {}: {}", f.code, f.reason),
                    None => "close frame without code".to_string(),
                });
                // tungstenite answers the close itself; the stream ends next.
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Err(e)) => {
                let after = *after_our_close.get_or_insert(close_sent.load(Ordering::SeqCst));
                break ReaderEnd::Failed {
                    error: e.to_string(),
                    after_our_close: after,
                };
            }
            None => {
                let after = *after_our_close.get_or_insert(close_sent.load(Ordering::SeqCst));
                break ReaderEnd::Ended {
                    close,
                    code,
                    after_our_close: after,
                };
            }
        };
        lock(&tally).record_reply(&reply, Instant::now());
        if reply.frame_index().is_some() {
            progress.send_modify(|p| p.answered += 1);
        }
    };
    progress.send_modify(|p| p.reader_done = true);
    end
}
