//! One connection: a sender and a reader joined in the session's task, then the accounting.
//!
//! The halves of the socket share a [`Shared`] behind a `std` mutex that is never held across an
//! `await` (the two futures run in one task, so it is never contended for long). The sender
//! records a frame in the ledger *before* handing it to the socket, so a reply can never beat
//! its own record. Sends are cancel-safe: the sender waits for room in the sink (nothing taken
//! yet), records, hands the frame over synchronously, then flushes; any of those waits may be
//! cut by the end of the connection's lifetime without losing track of a frame. The reader
//! publishes progress through a `watch` cell; the sender tells it to stop through another.

use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::connect::Ws;
use crate::ledger::{Answer, Ledger};
use crate::reply::{self, Reply};
use crate::session::SessionStats;
use crate::spec::Mode;

/// How long to wait for the close handshake (or for the reader to notice a dead peer).
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one connection should do.
pub(crate) struct ConnPlan<'a> {
    pub(crate) frames: &'a [Bytes],
    /// Position in `frames` of the first frame to send (cycling continues across connections).
    pub(crate) first_frame: u64,
    pub(crate) mode: Mode,
    pub(crate) interval: Option<Duration>,
    /// When to stop sending.
    pub(crate) end_at: Instant,
    /// `end_at` is a churn disconnect: cut the connection instead of draining and closing.
    pub(crate) abrupt: bool,
    /// For an abrupt end, reset the TCP connection (RST) rather than just dropping it (FIN).
    pub(crate) reset: bool,
    pub(crate) drain_timeout: Duration,
    /// Most unanswered frames before sending waits (flood) or skips (paced).
    pub(crate) window: usize,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnEnd {
    /// The client drained and closed.
    Normal,
    /// The client cut it (churn).
    Abrupt,
    /// The server closed it, or it was lost, before the client closed.
    ServerClosed,
}

/// How the sender finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendEnd {
    Closed,
    Aborted,
    PeerGone,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Frames answered (first replies).
    answered: u64,
    /// The read half has ended.
    done: bool,
}

struct Shared<'s> {
    ledger: Ledger,
    stats: &'s mut SessionStats,
    close_sent: bool,
    reader_ended: bool,
    /// The stream ended (or a close frame came) before the client sent its close.
    server_first: bool,
    fatal_seen: bool,
}

fn lock<'m, 's>(shared: &'m Mutex<Shared<'s>>) -> MutexGuard<'m, Shared<'s>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one connection to its end and books its outstanding frames.
pub(crate) async fn run(ws: Ws, plan: &ConnPlan<'_>, stats: &mut SessionStats) -> ConnEnd {
    let (mut sink, mut stream) = ws.split();
    let shared = Mutex::new(Shared {
        ledger: Ledger::default(),
        stats,
        close_sent: false,
        reader_ended: false,
        server_first: false,
        fatal_seen: false,
    });
    let (progress_tx, progress_rx) = watch::channel(Progress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (send_end, ()) = tokio::join!(
        send_side(&mut sink, plan, &shared, progress_rx, &stop_tx),
        read_side(&mut stream, &shared, &progress_tx, stop_rx),
    );

    let shared = shared.into_inner().unwrap_or_else(PoisonError::into_inner);
    let outstanding = shared.ledger.outstanding() as u64;
    let c = &mut shared.stats.counters;
    let end = match send_end {
        SendEnd::Aborted => ConnEnd::Abrupt,
        SendEnd::PeerGone => ConnEnd::ServerClosed,
        SendEnd::Closed if shared.server_first => ConnEnd::ServerClosed,
        SendEnd::Closed => ConnEnd::Normal,
    };
    match end {
        ConnEnd::Abrupt => {
            c.abrupt_disconnects += 1;
            c.abandoned += outstanding;
        }
        ConnEnd::ServerClosed => {
            c.closed_by_server += 1;
            if shared.fatal_seen {
                c.unanswered_after_fatal += outstanding;
            } else {
                c.violations.unanswered_on_server_close += outstanding;
            }
        }
        ConnEnd::Normal => c.violations.unanswered_at_end += outstanding,
    }
    if end == ConnEnd::Abrupt && plan.reset {
        if let Ok(ws) = sink.reunite(stream) {
            // Best effort: without it the drop below still ends the connection, with a FIN.
            let _ = ws.get_ref().get_ref().set_zero_linger();
        }
    }
    end
}

/// Waits until `pred` holds for the reader's progress (or the reader is gone).
async fn wait(progress: &mut watch::Receiver<Progress>, pred: impl FnMut(&Progress) -> bool) {
    let _ = progress.wait_for(pred).await;
}

/// How a connection's pacing is driven.
enum Pace {
    ClosedLoop,
    Every(Interval),
    Flood,
}

enum Stop {
    Deadline,
    PeerGone,
}

async fn send_side(
    sink: &mut SplitSink<Ws, Message>,
    plan: &ConnPlan<'_>,
    shared: &Mutex<Shared<'_>>,
    mut progress: watch::Receiver<Progress>,
    stop: &watch::Sender<bool>,
) -> SendEnd {
    let started = Instant::now();
    let end = sleep_until(plan.end_at);
    tokio::pin!(end);
    let mut pace = match (plan.mode, plan.interval) {
        (Mode::Paced, Some(period)) => {
            let mut t = tokio::time::interval(period);
            t.set_missed_tick_behavior(MissedTickBehavior::Skip);
            Pace::Every(t)
        }
        (Mode::Flood, _) => Pace::Flood,
        (Mode::ClosedLoop | Mode::Paced, _) => Pace::ClosedLoop,
    };
    let frames = plan.frames.len().max(1) as u64;
    let mut next_frame = plan.first_frame;

    let stopped = loop {
        if progress.borrow().done {
            break Stop::PeerGone;
        }
        let (sent, outstanding) = {
            let s = lock(shared);
            (s.ledger.sent(), s.ledger.outstanding())
        };
        match &mut pace {
            Pace::ClosedLoop if outstanding > 0 => {
                tokio::select! {
                    biased;
                    () = &mut end => break Stop::Deadline,
                    () = wait(&mut progress, move |p| p.done || p.answered >= sent) => continue,
                }
            }
            Pace::ClosedLoop => {}
            Pace::Every(ticker) => {
                tokio::select! {
                    biased;
                    () = &mut end => break Stop::Deadline,
                    () = wait(&mut progress, |p| p.done) => continue,
                    _ = ticker.tick() => {}
                }
                if outstanding >= plan.window {
                    lock(shared).stats.counters.window_full += 1;
                    continue;
                }
            }
            Pace::Flood if outstanding >= plan.window => {
                lock(shared).stats.counters.window_full += 1;
                let floor = sent - plan.window as u64;
                tokio::select! {
                    biased;
                    () = &mut end => break Stop::Deadline,
                    () = wait(&mut progress, move |p| p.done || p.answered > floor) => continue,
                }
            }
            Pace::Flood => {}
        }
        if Instant::now() >= plan.end_at {
            break Stop::Deadline;
        }
        // Room in the sink; nothing is handed over yet, so this wait may be cut safely.
        tokio::select! {
            biased;
            () = &mut end => break Stop::Deadline,
            ready = poll_fn(|cx| sink.poll_ready_unpin(cx)) => if ready.is_err() {
                break Stop::PeerGone;
            },
        }
        let index = usize::try_from(next_frame % frames).unwrap_or(0);
        let Some(frame) = plan.frames.get(index).cloned() else {
            break Stop::Deadline;
        };
        next_frame += 1;
        {
            let mut s = lock(shared);
            s.ledger.record_send(Instant::now());
            s.stats.counters.frames_sent += 1;
        }
        if sink.start_send_unpin(Message::Binary(frame)).is_err() {
            break Stop::PeerGone;
        }
        // The frame is in the sink's buffer now; a cut flush is finished by the drain or close.
        tokio::select! {
            biased;
            () = &mut end => break Stop::Deadline,
            flushed = poll_fn(|cx| sink.poll_flush_unpin(cx)) => if flushed.is_err() {
                break Stop::PeerGone;
            },
        }
    };
    lock(shared).stats.active += Instant::now()
        .min(plan.end_at)
        .saturating_duration_since(started);

    match stopped {
        Stop::Deadline if plan.abrupt => {
            stop.send_replace(true);
            SendEnd::Aborted
        }
        Stop::Deadline => finish(sink, shared, &mut progress, stop, plan.drain_timeout).await,
        Stop::PeerGone => {
            // Give the reader a moment to see the close (and any fatal error) before it stops.
            let _ = timeout(CLOSE_TIMEOUT, wait(&mut progress, |p| p.done)).await;
            stop.send_replace(true);
            SendEnd::PeerGone
        }
    }
}

/// Drains outstanding replies (bounded), then closes unless the server already did.
async fn finish(
    sink: &mut SplitSink<Ws, Message>,
    shared: &Mutex<Shared<'_>>,
    progress: &mut watch::Receiver<Progress>,
    stop: &watch::Sender<bool>,
    drain_timeout: Duration,
) -> SendEnd {
    let sent = lock(shared).ledger.sent();
    let _ = timeout(drain_timeout, async {
        let _ = poll_fn(|cx| sink.poll_flush_unpin(cx)).await;
        wait(progress, move |p| p.done || p.answered >= sent).await;
    })
    .await;
    let we_close = {
        let mut s = lock(shared);
        s.close_sent = !s.reader_ended;
        s.close_sent
    };
    if we_close {
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "load test done".into(),
        }));
        let _ = timeout(CLOSE_TIMEOUT, sink.send(close)).await;
        let _ = timeout(CLOSE_TIMEOUT, wait(progress, |p| p.done)).await;
    }
    stop.send_replace(true);
    if we_close {
        SendEnd::Closed
    } else {
        SendEnd::PeerGone
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn read_side(
    stream: &mut SplitStream<Ws>,
    shared: &Mutex<Shared<'_>>,
    progress: &watch::Sender<Progress>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            msg = stream.next() => msg,
        };
        let now = Instant::now();
        match msg {
            Some(Ok(Message::Text(text))) => {
                record_reply(shared, progress, reply::parse(text.as_str()), now);
            }
            Some(Ok(Message::Binary(_))) => lock(shared).stats.counters.unrecognized += 1,
            // tungstenite answers a close frame itself; the stream ends next.
            Some(Ok(Message::Close(_))) => mark_ended(shared),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(_)) | None => {
                mark_ended(shared);
                break;
            }
        }
    }
    progress.send_modify(|p| p.done = true);
}

fn mark_ended(shared: &Mutex<Shared<'_>>) {
    let mut s = lock(shared);
    if !s.reader_ended {
        s.reader_ended = true;
        s.server_first = !s.close_sent;
    }
}

/// Books one reply: checks its index against the ledger, counts it, records latency.
fn record_reply(
    shared: &Mutex<Shared<'_>>,
    progress: &watch::Sender<Progress>,
    reply: Reply,
    now: Instant,
) {
    let mut guard = lock(shared);
    let Shared {
        ledger,
        stats,
        fatal_seen,
        ..
    } = &mut *guard;
    let c = &mut stats.counters;
    let index = match &reply {
        Reply::Result { frame_index } | Reply::Dropped { frame_index, .. } => Some(*frame_index),
        Reply::Error { frame_index, .. } => *frame_index,
        Reply::Warning(_) | Reply::Unrecognized => None,
    };
    let sent_at = match index.map(|i| ledger.answer(i)) {
        None => None,
        Some(Answer::First { sent_at }) => Some(sent_at),
        Some(Answer::Duplicate) => {
            c.violations.duplicate += 1;
            return;
        }
        Some(Answer::NeverSent) => {
            c.violations.unknown_index += 1;
            return;
        }
    };
    match reply {
        Reply::Result { .. } => {
            c.results += 1;
            if let Some(t) = sent_at {
                stats
                    .latency
                    .record(now.saturating_duration_since(t).as_secs_f64() * 1000.0);
            }
        }
        Reply::Dropped { reason, .. } => {
            c.dropped += 1;
            c.dropped_by_reason
                .add(reason.as_deref().unwrap_or("unspecified"), 1);
        }
        Reply::Error { code, fatal, .. } => {
            c.errors += 1;
            c.errors_by_code.add(&code, 1);
            if fatal {
                c.fatal_errors += 1;
                *fatal_seen = true;
            }
        }
        Reply::Warning(w) if w == "slow_down" => c.slow_down += 1,
        Reply::Warning(_) => c.other_warnings += 1,
        Reply::Unrecognized => c.unrecognized += 1,
    }
    if sent_at.is_some() {
        let answered = ledger.answered();
        progress.send_modify(|p| p.answered = answered);
    }
}
