//! The WebSocket session: one task per connection, reading frames, admitting
//! or dropping them, and writing exactly one reply per frame.
//!
//! The loop is a single task selecting over three things: the next client
//! message, the completion of the frame in flight, and shutdown. Replies are
//! written inline, so a client that stops reading its replies stops the loop
//! from reading its frames: backpressure reaches it through TCP instead of a
//! queue growing here. A session has at most one frame in its pipeline; a
//! frame arriving meanwhile is answered `dropped` at once (after the O(1)
//! validation the seed's flow puts first) and never decoded or copied.
//!
//! Close codes: 1008 `invalid_pipeline`, 1003 `invalid_message`, 1007
//! `invalid_frame`, 1009 `frame_too_large`, 1001 server shutdown or idle
//! timeout, 1000 when the client closed first.
//!
//! Liveness: the server pings every `STREAMHOST_PING_INTERVAL_SECS`; anything
//! from the client (a frame, a pong) restarts the idle clock, and a session
//! silent for `STREAMHOST_IDLE_TIMEOUT_SECS` is closed, so dead peers do not
//! hold a session slot forever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::future::OptionFuture;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use crate::backpressure::SlowdownDetector;
use crate::frame::validate_jpeg;
use crate::pipeline::exec::{FrameOutcome, SessionRunner};
use crate::pipeline::registry::Plan;
use crate::server::{refusal, AppState};
use crate::session::{next_session_id, SessionCounters};
use crate::wire::{ErrorCode, Reply, WireError};

type InFlight = JoinHandle<(SessionRunner, FrameOutcome)>;

/// `GET /ws/video/stream?pipeline_id=ID`
pub async fn upgrade(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        state.metrics.error(ErrorCode::InternalError);
        tracing::warn!(
            limit = state.config.max_connections,
            "connection refused: session limit reached"
        );
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_sessions",
            "Server is at its session limit; retry later",
        );
    };
    let pipeline_id = query
        .ok()
        .and_then(|Query(q)| q.get("pipeline_id").cloned());
    let limit = state.config.ws_message_limit();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| session(socket, state, pipeline_id, permit))
}

/// Keeps `stream_sessions_active` right however the session ends.
struct ActiveGuard(AppState);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.metrics.sessions_active.dec();
    }
}

async fn session(
    mut socket: WebSocket,
    state: AppState,
    pipeline_id: Option<String>,
    _permit: OwnedSemaphorePermit,
) {
    let session_id = next_session_id();
    let plan = match state.registry.lookup(pipeline_id.as_deref()) {
        Ok(plan) => plan,
        Err(e) => {
            let shown: String = pipeline_id.unwrap_or_default().chars().take(64).collect();
            let err = WireError::new(ErrorCode::InvalidPipeline, e.to_string());
            tracing::warn!(%session_id, pipeline_id = %shown, error = err.code.as_str(), detail = %err.detail, "connect refused");
            state.metrics.error(err.code);
            let _ = send(&mut socket, &Reply::error(None, err)).await;
            let _ = close(&mut socket, 1008, "invalid_pipeline").await;
            return;
        }
    };
    state.metrics.sessions_active.inc();
    let _active = ActiveGuard(state.clone());
    tracing::info!(%session_id, pipeline_id = %plan.id, "session connected");
    let mut s = Session {
        runner: Some(SessionRunner::new(
            plan.clone(),
            state.engine.clone(),
            state.exec_limits(),
            session_id.clone(),
        )),
        slowdown: SlowdownDetector::new(state.config.drop_window, state.config.slowdown_threshold),
        counters: SessionCounters::default(),
        in_flight: None,
        in_flight_frame: 0,
        in_flight_since: Instant::now(),
        session_id,
        plan,
        state,
    };
    let reason = s.run(&mut socket).await;
    let c = &s.counters;
    tracing::info!(session_id = %s.session_id, pipeline_id = %s.plan.id, frames = c.frame_index, processed = c.processed,
        dropped = c.dropped, failed = c.failed, slowdowns = c.slowdowns, reason, "session disconnected");
}

struct Session {
    state: AppState,
    plan: std::sync::Arc<Plan>,
    session_id: String,
    counters: SessionCounters,
    slowdown: SlowdownDetector,
    runner: Option<SessionRunner>,
    in_flight: Option<InFlight>,
    in_flight_frame: u64,
    in_flight_since: Instant,
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
        loop {
            let flow = tokio::select! {
                done = OptionFuture::from(self.in_flight.as_mut()), if self.in_flight.is_some() => {
                    self.in_flight = None;
                    match done {
                        Some(joined) => self.finish_frame(socket, joined).await,
                        None => Flow::Continue,
                    }
                }
                _ = shutdown.changed() => return self.drain_for_shutdown(socket).await,
                _ = ping.tick() => match socket.send(Message::Ping(bytes::Bytes::new())).await {
                    Ok(()) => Flow::Continue,
                    Err(_) => Flow::End("send failed"),
                },
                // A frame in flight is the server's doing, not the client's idleness.
                _ = tokio::time::sleep_until(idle_deadline), if self.in_flight.is_none() => {
                    tracing::info!(session_id = %self.session_id, pipeline_id = %self.plan.id, idle_secs = idle.as_secs(), "session idle; closing");
                    let _ = close(socket, 1001, "idle timeout").await;
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
        let cfg = &self.state.config;
        if let Err(e) = validate_jpeg(&frame, cfg.max_frame_bytes, &cfg.max_frame_label()) {
            return self.fatal(socket, None, e.into()).await;
        }
        let runner = match (&self.in_flight, self.runner.take()) {
            (None, Some(runner)) => runner,
            (_, runner) => {
                self.runner = runner;
                return self.drop_frame(socket, frame_index).await;
            }
        };
        if self.slowdown.record(false) {
            // Possible when the window fills on an admitted frame after earlier drops.
            self.warn_slow_down(socket).await;
        }
        self.in_flight_frame = frame_index;
        self.in_flight_since = Instant::now();
        let mut runner = runner;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let outcome = runner.run(frame);
            (runner, outcome)
        }));
        Flow::Continue
    }

    async fn drop_frame(&mut self, socket: &mut WebSocket, frame_index: u64) -> Flow {
        self.counters.record_dropped();
        self.state
            .metrics
            .frames_dropped
            .with_label_values(&[&self.plan.id])
            .inc();
        tracing::info!(session_id = %self.session_id, pipeline_id = %self.plan.id, frame_index, "frame dropped");
        if send(socket, &Reply::dropped(frame_index)).await.is_err() {
            return Flow::End("send failed");
        }
        if self.slowdown.record(true) {
            return self.warn_slow_down(socket).await;
        }
        Flow::Continue
    }

    async fn warn_slow_down(&mut self, socket: &mut WebSocket) -> Flow {
        self.counters.record_slowdown();
        self.state
            .metrics
            .slowdown_signals
            .with_label_values(&[&self.plan.id])
            .inc();
        tracing::info!(session_id = %self.session_id, pipeline_id = %self.plan.id, frame_index = self.counters.frame_index,
            drop_rate = self.slowdown.drop_rate(), "slow_down sent");
        match send(socket, &Reply::slow_down()).await {
            Ok(()) => Flow::Continue,
            Err(()) => Flow::End("send failed"),
        }
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
                self.runner = Some(SessionRunner::new(
                    self.plan.clone(),
                    self.state.engine.clone(),
                    self.state.exec_limits(),
                    self.session_id.clone(),
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
        match outcome.result {
            Ok(result) => {
                self.counters.record_processed();
                self.state
                    .metrics
                    .frames_processed
                    .with_label_values(&[&self.plan.id])
                    .inc();
                match send(socket, &Reply::result(frame_index, result)).await {
                    Ok(()) => Flow::Continue,
                    Err(()) => Flow::End("send failed"),
                }
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
        let m = &self.state.metrics;
        m.frame_latency
            .with_label_values(&[&self.plan.id])
            .observe(took.as_secs_f64());
        for (i, t) in &outcome.node_times {
            if let Some(node) = self.plan.nodes.get(*i) {
                m.node_latency
                    .with_label_values(&[&self.plan.id, &node.id])
                    .observe(t.as_secs_f64());
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
        match send(socket, &Reply::error(Some(frame_index), err)).await {
            Ok(()) => Flow::Continue,
            Err(()) => Flow::End("send failed"),
        }
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
        let code = match err.code {
            ErrorCode::InvalidMessage => 1003,
            ErrorCode::InvalidFrame => 1007,
            ErrorCode::FrameTooLarge => 1009,
            ErrorCode::InvalidPipeline => 1008,
            ErrorCode::PipelineFailure | ErrorCode::InternalError => 1011,
        };
        let reason = err.code.as_str();
        let _ = send(socket, &Reply::error(frame_index, err)).await;
        let _ = close(socket, code, reason).await;
        Flow::End(reason)
    }

    /// Shutdown: answer the frame in flight (within the grace period), then close 1001.
    async fn drain_for_shutdown(&mut self, socket: &mut WebSocket) -> &'static str {
        if let Some(handle) = self.in_flight.take() {
            match tokio::time::timeout(self.state.config.shutdown_grace, handle).await {
                Ok(joined) => {
                    let _ = self.finish_frame(socket, joined).await;
                }
                Err(_) => {
                    let err = WireError::new(
                        ErrorCode::InternalError,
                        "server shut down before the frame finished",
                    );
                    let frame_index = self.in_flight_frame;
                    let _ = self.frame_error(socket, frame_index, err).await;
                }
            }
        }
        let _ = close(socket, 1001, "server shutting down").await;
        "server shutdown"
    }
}

async fn send(socket: &mut WebSocket, reply: &Reply) -> Result<(), ()> {
    socket
        .send(Message::Text(reply.to_text().into()))
        .await
        .map_err(|_| ())
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) -> Result<(), ()> {
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await
        .map_err(|_| ())
}
