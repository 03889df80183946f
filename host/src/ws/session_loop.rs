//! One WebSocket session after its upgrade: a single task per connection.
//!
//! The loop selects over three things: the next client message, the
//! completion of the frame in flight, and shutdown. Replies are written
//! inline, so a client that stops reading its replies stops the loop from
//! reading its frames: backpressure reaches it through TCP instead of a queue
//! growing here. A session has at most one frame in its pipeline; a frame
//! arriving meanwhile is answered `dropped` at once (after the O(1) validation
//! the seed's flow puts first) and never decoded or copied.
//!
//! Overload is shed in the open: a session over its fps quota gets `dropped`
//! with `reason: rate_limited`; a frame admitted by its session still waits
//! for one of the server's `STREAMHOST_MAX_FRAMES_IN_FLIGHT` turns, handed
//! out first come first served, and since each session has at most one frame
//! waiting or running, a fast client cannot starve a slow one. Every write has
//! the send timeout, so a client that stops reading loses its session instead
//! of holding a task and its buffers forever.
//!
//! Liveness: the server pings every `STREAMHOST_PING_INTERVAL_SECS`; anything
//! from the client (a frame, a pong) restarts the idle clock, and a session
//! silent for `STREAMHOST_IDLE_TIMEOUT_SECS` is closed, so dead peers do not
//! hold a session slot forever.
//!
//! Reloads: a session runs the `Arc<Plan>` it was admitted with to its end,
//! whatever replaces its pipeline meanwhile. It also watches the tenancy in
//! force, and when a reloaded tenants file no longer gives its token to its
//! tenant it answers `unauthorized` and closes with 1008.
//!
//! Deadlines: each frame carries a [`FrameDeadline`]; the frame's task awaits
//! the executor through it, so the deadline's timer is this task's, and a
//! session that ends with a frame in flight abandons it (aborting the task
//! does not stop a blocking closure; the flag stops it at its next node).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::Extension;
use futures_util::future::OptionFuture;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::{JoinError, JoinHandle};

use crate::admission::admit_pipeline;
use crate::backpressure::{FrameRate, SlowdownDetector};
use crate::config::CLOSE_HANDSHAKE_WAIT;
use crate::deadline::FrameDeadline;
use crate::frame::validate_jpeg;
use crate::metrics::SessionSeries;
use crate::pipeline::exec::{ExecError, FrameAt, FrameOutcome, SessionRunner};
use crate::pipeline::plan::Plan;
use crate::session::{next_session_id, DropLine, DropLog, DropSummary, SessionCounters};
use crate::state::{AppState, ConnectionSlot};
use crate::tenants::{Tenancy, Tenant, TenantSlot};
use crate::wasm::InstanceLimits;
use crate::wire::{DropReason, ErrorCode, Reply, WireError};

type InFlight = JoinHandle<Result<(SessionRunner, FrameOutcome), JoinError>>;

/// Keeps `stream_sessions_active` right however the session ends.
struct ActiveGuard(AppState, Arc<Tenant>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.metrics.sessions_active.dec();
        self.0
            .metrics
            .tenant_sessions_active
            .with_label_values(&[&self.1.id])
            .dec();
    }
}

pub(super) async fn session(
    mut socket: WebSocket,
    state: AppState,
    pipeline_id: Option<String>,
    (tenant, digest): (Arc<Tenant>, Option<[u8; 32]>),
    _slots: (
        OwnedSemaphorePermit,
        TenantSlot,
        Option<Extension<ConnectionSlot>>,
    ),
) {
    let session_id = next_session_id();
    let send_timeout = state.config.send_timeout;
    let mut tenancy = state.tenancy.subscribe();
    if !tenancy
        .borrow_and_update()
        .still_admits(&tenant.id, digest.as_ref())
    {
        // Revoked between the upgrade and now.
        let err = WireError::new(ErrorCode::Unauthorized, REVOKED);
        state.metrics.error(err.code);
        let _ = send(&mut socket, &Reply::error(None, err), send_timeout).await;
        let _ = close(&mut socket, 1008, "unauthorized", send_timeout).await;
        return;
    }
    let (plan, instance_limits) = match admit_pipeline(
        &state.registry,
        &tenant,
        pipeline_id.as_deref(),
    ) {
        Ok(admitted) => admitted,
        Err(err) => {
            let err = WireError::from(err);
            let shown: String = pipeline_id.unwrap_or_default().chars().take(64).collect();
            tracing::warn!(%session_id, tenant = %tenant.id, pipeline_id = %shown, error = err.code.as_str(), detail = %err.detail, "connect refused");
            state.metrics.error(err.code);
            let code = err.code;
            let _ = send(&mut socket, &Reply::error(None, err), send_timeout).await;
            let _ = close(&mut socket, code.close_code(), code.as_str(), send_timeout).await;
            return;
        }
    };
    state.metrics.sessions_active.inc();
    state
        .metrics
        .tenant_sessions_active
        .with_label_values(&[&tenant.id])
        .inc();
    let _active = ActiveGuard(state.clone(), tenant.clone());
    tracing::info!(%session_id, tenant = %tenant.id, pipeline_id = %plan.id, "session connected");
    let node_ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
    let series = state
        .metrics
        .session_series(&plan.id, &tenant.id, &node_ids);
    let mut s = Session {
        series,
        runner: Some(state.runner(&plan, &instance_limits, &session_id)),
        instance_limits,
        slowdown: SlowdownDetector::new(state.config.drop_window, state.config.slowdown_threshold),
        rate: tenant.quotas.max_fps.map(FrameRate::new),
        counters: SessionCounters::default(),
        in_flight: None,
        in_flight_deadline: FrameDeadline::none(),
        in_flight_frame: 0,
        in_flight_since: Instant::now(),
        started: Instant::now(),
        drop_log: DropLog::new(state.config.drop_log_interval),
        send_timeout,
        session_id,
        tenant,
        digest,
        tenancy,
        plan,
        state,
    };
    let reason = s.run(&mut socket).await;
    if let Some(abandoned) = s.in_flight.take() {
        // Aborting stops a frame still waiting for admission; one already
        // running stops at its next node (an ONNX run at once).
        s.in_flight_deadline.abandon();
        abandoned.abort();
    }
    if let Some(held) = s.drop_log.flush() {
        log_drop_summary(&s, &held);
    }
    let c = &s.counters;
    tracing::info!(session_id = %s.session_id, tenant = %s.tenant.id, pipeline_id = %s.plan.id, frames = c.frame_index, processed = c.processed,
        dropped = c.dropped, failed = c.failed, slowdowns = c.slowdowns, reason, "session disconnected");
}

/// One line for the drops a session's `DropLog` held back.
fn log_drop_summary(s: &Session, held: &DropSummary) {
    tracing::info!(session_id = %s.session_id, tenant = %s.tenant.id, pipeline_id = %s.plan.id,
        busy = held.busy, rate_limited = held.rate_limited, first_frame_index = held.first_frame_index,
        last_frame_index = held.last_frame_index, "frames dropped");
}

/// The detail sent to a session whose token a reloaded tenants file revoked.
const REVOKED: &str = "The API token this session authenticated with was revoked";

struct Session {
    state: AppState,
    tenant: Arc<Tenant>,
    /// The digest of the token the session authenticated with (`None`: open mode).
    digest: Option<[u8; 32]>,
    /// The tenancy in force, to learn of reloads.
    tenancy: watch::Receiver<Arc<Tenancy>>,
    plan: Arc<Plan>,
    instance_limits: Vec<InstanceLimits>,
    session_id: String,
    counters: SessionCounters,
    slowdown: SlowdownDetector,
    /// The fps quota, when the tenant (or server) sets one.
    rate: Option<FrameRate>,
    runner: Option<SessionRunner>,
    in_flight: Option<InFlight>,
    /// The frame in flight's deadline and cancel flag.
    in_flight_deadline: FrameDeadline,
    in_flight_frame: u64,
    in_flight_since: Instant,
    /// When the WebSocket was accepted: frame contexts count time from here.
    started: Instant,
    send_timeout: Duration,
    /// This session's metric series, resolved once.
    series: SessionSeries,
    /// Samples the "frame dropped" lines (see `DropLog`).
    drop_log: DropLog,
}

/// Whether the loop goes on after handling something.
enum Flow {
    Continue,
    End(&'static str),
}

impl Session {
    async fn run(&mut self, socket: &mut WebSocket) -> &'static str {
        let mut shutdown = self.state.shutdown.clone();
        let idle = self.state.config.idle_timeout;
        let mut idle_deadline = tokio::time::Instant::now() + idle;
        let mut ping = tokio::time::interval(self.state.config.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.reset();
        let mut tenancy_live = true;
        loop {
            let flow = tokio::select! {
                changed = self.tenancy.changed(), if tenancy_live => match changed {
                    Ok(()) => {
                        let admits = self.tenancy.borrow_and_update().still_admits(&self.tenant.id, self.digest.as_ref());
                        if admits {
                            Flow::Continue
                        } else {
                            let err = WireError::new(ErrorCode::Unauthorized, REVOKED);
                            self.fatal(socket, None, err).await
                        }
                    }
                    Err(_) => {
                        tenancy_live = false;
                        Flow::Continue
                    }
                },
                done = OptionFuture::from(self.in_flight.as_mut()), if self.in_flight.is_some() => {
                    self.in_flight = None;
                    match done {
                        Some(joined) => self.finish_frame(socket, joined.and_then(|inner| inner)).await,
                        None => Flow::Continue,
                    }
                }
                _ = shutdown.changed() => return self.drain_for_shutdown(socket).await,
                _ = ping.tick() => self.sent(write(socket, Message::Ping(bytes::Bytes::new()), self.send_timeout).await),
                // A frame in flight is the server's doing, not the client's idleness.
                _ = tokio::time::sleep_until(idle_deadline), if self.in_flight.is_none() => {
                    tracing::info!(session_id = %self.session_id, pipeline_id = %self.plan.id, idle_secs = idle.as_secs(), "session idle; closing");
                    let _ = close(socket, 1001, "idle timeout", self.send_timeout).await;
                    Flow::End("idle timeout")
                }
                msg = socket.recv() => {
                    idle_deadline = tokio::time::Instant::now() + idle;
                    match msg {
                        None => Flow::End("client went away"),
                        Some(Err(e)) => {
                            tracing::info!(session_id = %self.session_id, pipeline_id = %self.plan.id, error = %e, "websocket error");
                            Flow::End("websocket error")
                        }
                        Some(Ok(Message::Binary(frame))) => self.on_frame(socket, frame).await,
                        Some(Ok(Message::Text(_))) => {
                            let err = WireError::new(ErrorCode::InvalidMessage, "Text messages are not accepted; send each frame as a binary JPEG message");
                            self.fatal(socket, None, err).await
                        }
                        Some(Ok(Message::Close(_))) => Flow::End("client closed"),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    }
                }
            };
            if let Flow::End(reason) = flow {
                return reason;
            }
        }
    }

    async fn on_frame(&mut self, socket: &mut WebSocket, frame: bytes::Bytes) -> Flow {
        let frame_index = self.counters.next_frame();
        let at = FrameAt {
            index: frame_index,
            received: self.started.elapsed(),
        };
        let cfg = &self.state.config;
        if let Err(e) = validate_jpeg(&frame, cfg.max_frame_bytes, &cfg.max_frame_label()) {
            return self.fatal(socket, None, e.into()).await;
        }
        if let Some(rate) = &mut self.rate {
            if !rate.admit(Instant::now()) {
                return self
                    .drop_frame(socket, frame_index, DropReason::RateLimited)
                    .await;
            }
        }
        let runner = match (&self.in_flight, self.runner.take()) {
            (None, Some(runner)) => runner,
            (_, runner) => {
                self.runner = runner;
                return self.drop_frame(socket, frame_index, DropReason::Busy).await;
            }
        };
        if self.slowdown.record(false) {
            // Possible when the window fills on an admitted frame after earlier drops.
            self.warn_slow_down(socket).await;
        }
        self.in_flight_frame = frame_index;
        self.in_flight_since = Instant::now();
        let mut runner = runner;
        let admission = self.state.admission.clone();
        let waited = self.series.admission_wait.clone();
        let tenant = self.tenant.clone();
        let deadline = FrameDeadline::new(self.state.config.frame_timeout);
        self.in_flight_deadline = deadline.clone();
        let abandoned = self.series.abandoned.clone();
        // Wait for a turn (fair across tenants, in arrival order within one,
        // at most one waiter per session), then run on a blocking thread
        // holding the turn, its deadline counted from there.
        self.in_flight = Some(tokio::spawn(async move {
            let queued = Instant::now();
            let turn = admission.acquire(&tenant.id, tenant.quotas.weight).await;
            waited.observe(queued.elapsed().as_secs_f64());
            deadline.start();
            let watched = deadline.clone();
            let work = tokio::task::spawn_blocking(move || {
                let outcome = runner.run_until(frame, at, &deadline);
                drop(turn);
                if let Err(ExecError::Abandoned { .. }) = outcome.result {
                    abandoned.inc();
                }
                (runner, outcome)
            });
            watched.enforce(work).await
        }));
        Flow::Continue
    }

    fn sent(&self, result: Result<(), SendError>) -> Flow {
        match result {
            Ok(()) => Flow::Continue,
            Err(SendError::Closed) => Flow::End("send failed"),
            Err(SendError::TimedOut) => {
                self.state.metrics.error(ErrorCode::SlowConsumer);
                tracing::warn!(session_id = %self.session_id, tenant = %self.tenant.id, pipeline_id = %self.plan.id,
                    timeout_secs = self.send_timeout.as_secs(), error = ErrorCode::SlowConsumer.as_str(), "client is not reading its replies; closing");
                Flow::End("slow consumer")
            }
        }
    }

    async fn drop_frame(
        &mut self,
        socket: &mut WebSocket,
        frame_index: u64,
        why: DropReason,
    ) -> Flow {
        self.counters.record_dropped();
        self.series.dropped(why).inc();
        match self
            .drop_log
            .record(frame_index, why == DropReason::Busy, Instant::now())
        {
            DropLine::Single => {
                tracing::info!(session_id = %self.session_id, tenant = %self.tenant.id, pipeline_id = %self.plan.id, frame_index, reason = why.as_str(), "frame dropped");
            }
            DropLine::Summary(held) => log_drop_summary(self, &held),
            DropLine::Held => {}
        }
        let sent = send(socket, &Reply::dropped(frame_index, why), self.send_timeout).await;
        if let Flow::End(reason) = self.sent(sent) {
            return Flow::End(reason);
        }
        if self.slowdown.record(true) {
            return self.warn_slow_down(socket).await;
        }
        // A flooding client would otherwise have many frames dropped per turn
        // of the runtime; yielding here makes sessions take turns frame by frame.
        tokio::task::yield_now().await;
        Flow::Continue
    }

    async fn warn_slow_down(&mut self, socket: &mut WebSocket) -> Flow {
        self.counters.record_slowdown();
        self.series.slowdowns.inc();
        tracing::info!(session_id = %self.session_id, pipeline_id = %self.plan.id, frame_index = self.counters.frame_index,
            drop_rate = self.slowdown.drop_rate(), "slow_down sent");
        let sent = send(socket, &Reply::slow_down(), self.send_timeout).await;
        self.sent(sent)
    }

    async fn finish_frame(
        &mut self,
        socket: &mut WebSocket,
        joined: Result<(SessionRunner, FrameOutcome), tokio::task::JoinError>,
    ) -> Flow {
        let frame_index = self.in_flight_frame;
        let took = self.in_flight_since.elapsed();
        let (runner, outcome) = match joined {
            Ok(done) => done,
            Err(e) => {
                // The executor panicked: its instances are gone; start afresh.
                self.runner = Some(self.state.runner(
                    &self.plan,
                    &self.instance_limits,
                    &self.session_id,
                ));
                let err = WireError::new(
                    ErrorCode::InternalError,
                    "internal error while processing the frame",
                );
                tracing::error!(session_id = %self.session_id, pipeline_id = %self.plan.id, frame_index, error = %e, "executor task failed");
                return self.frame_error(socket, frame_index, err).await;
            }
        };
        self.runner = Some(runner);
        self.observe(&outcome, took);
        if let Err(ExecError::Deadline { .. }) = outcome.result {
            self.series.deadline_exceeded.inc();
        }
        match outcome.result {
            Ok(result) => {
                self.counters.record_processed();
                self.series.processed.inc();
                let sent = send(
                    socket,
                    &Reply::result(frame_index, result),
                    self.send_timeout,
                )
                .await;
                self.sent(sent)
            }
            Err(e) => {
                let err: WireError = e.into();
                if err.code.closes_session() {
                    self.fatal(socket, Some(frame_index), err).await
                } else {
                    self.frame_error(socket, frame_index, err).await
                }
            }
        }
    }

    fn observe(&self, outcome: &FrameOutcome, took: Duration) {
        self.series.frame_latency.observe(took.as_secs_f64());
        for (i, t) in &outcome.node_times {
            if let Some(histogram) = self.series.node_latency.get(*i) {
                histogram.observe(t.as_secs_f64());
            }
            if let Some([ran, _]) = self.series.node_runs.get(*i) {
                ran.inc();
            }
        }
        for i in &outcome.skipped {
            if let Some([_, skipped]) = self.series.node_runs.get(*i) {
                skipped.inc();
            }
        }
    }

    /// A per-frame failure: reported, counted, and the session carries on.
    async fn frame_error(
        &mut self,
        socket: &mut WebSocket,
        frame_index: u64,
        err: WireError,
    ) -> Flow {
        self.counters.record_failed();
        self.state.metrics.error(err.code);
        tracing::warn!(session_id = %self.session_id, pipeline_id = %self.plan.id, frame_index, error = err.code.as_str(), detail = %err.detail, "frame failed");
        let sent = send(
            socket,
            &Reply::error(Some(frame_index), err),
            self.send_timeout,
        )
        .await;
        self.sent(sent)
    }

    /// A protocol violation: reply, close with the code's close code, end.
    async fn fatal(
        &mut self,
        socket: &mut WebSocket,
        frame_index: Option<u64>,
        err: WireError,
    ) -> Flow {
        self.state.metrics.error(err.code);
        tracing::warn!(session_id = %self.session_id, pipeline_id = %self.plan.id, frame_index = frame_index.unwrap_or(self.counters.frame_index),
            error = err.code.as_str(), detail = %err.detail, "session closed on error");
        let code = err.code.close_code();
        let reason = err.code.as_str();
        let _ = send(socket, &Reply::error(frame_index, err), self.send_timeout).await;
        let _ = close(socket, code, reason, self.send_timeout).await;
        Flow::End(reason)
    }

    /// Shutdown: answer the frame in flight (within the grace period), then close 1001.
    async fn drain_for_shutdown(&mut self, socket: &mut WebSocket) -> &'static str {
        if let Some(handle) = self.in_flight.take() {
            match tokio::time::timeout(self.state.config.shutdown_grace, handle).await {
                Ok(joined) => {
                    let _ = self
                        .finish_frame(socket, joined.and_then(|inner| inner))
                        .await;
                }
                Err(_) => {
                    self.in_flight_deadline.abandon();
                    let err = WireError::new(
                        ErrorCode::InternalError,
                        "server shut down before the frame finished",
                    );
                    let frame_index = self.in_flight_frame;
                    let _ = self.frame_error(socket, frame_index, err).await;
                }
            }
        }
        if close(socket, 1001, "server shutting down", self.send_timeout)
            .await
            .is_ok()
        {
            await_client_close(socket, CLOSE_HANDSHAKE_WAIT).await;
        }
        "server shutdown"
    }
}

/// Why a message could not be written.
enum SendError {
    /// The connection is gone.
    Closed,
    /// The client did not take it within the send timeout.
    TimedOut,
}

async fn write(socket: &mut WebSocket, msg: Message, timeout: Duration) -> Result<(), SendError> {
    match tokio::time::timeout(timeout, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendError::Closed),
        Err(_) => Err(SendError::TimedOut),
    }
}

async fn send(socket: &mut WebSocket, reply: &Reply, timeout: Duration) -> Result<(), SendError> {
    write(socket, Message::Text(reply.to_text().into()), timeout).await
}

/// Reads (and discards) what the client still sends until its close frame,
/// the end of the connection, or `wait`: the close handshake, so the socket
/// is not reset under a frame the client had on the wire.
async fn await_client_close(socket: &mut WebSocket, wait: Duration) {
    let _ = tokio::time::timeout(wait, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn close(
    socket: &mut WebSocket,
    code: u16,
    reason: &'static str,
    timeout: Duration,
) -> Result<(), SendError> {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    write(socket, Message::Close(Some(frame)), timeout).await
}
