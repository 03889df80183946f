//! The HTTP side: routes and the serve loop with graceful shutdown (the
//! state every handler shares is [`crate::state`]'s).
//!
//! Shaped like mini-redis: [`serve`] takes an already-bound listener and a
//! shutdown future, so tests start a real server on an ephemeral port and stop
//! it when they like, and `main` wires the same function to SIGTERM/Ctrl-C.
//! On shutdown every session is told (a `watch` channel) to finish its frame
//! in flight and close with code 1001; meanwhile the listener stays open, so
//! an orchestrator's probes see `/ready` answer 503 `draining` and new
//! WebSocket upgrades are refused with 503, and `serve` returns once sessions
//! are gone or the grace period has passed.
//!
//! The accept loop is ours rather than `axum::serve` because that one sets no
//! header-read timeout: hyper's HTTP/1 builder with a tokio timer closes a
//! connection that has not sent its headers in time (also between keep-alive
//! requests), and a semaphore caps TCP connections before any byte is read,
//! so slow or idle clients cannot hold sockets without bound. With TLS
//! configured, each connection's handshake runs first, in its own task.
//! [`serve_connection`] serves one connection over any byte stream, which is
//! also how the fuzzer drives the real handler in memory.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::pipeline::PipelineStatus;
use crate::state::{AppState, ConnectionSlot};
use crate::ws;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/pipelines", get(pipelines))
        .route("/ws/video/stream", get(ws::upgrade))
        .merge(crate::web::routes())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains sessions (see module docs).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let mut stopping = state.shutdown.clone();
    state.reload.start(state.shutdown.clone());
    let tx = state.shutdown_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: refusing new connections, draining sessions");
        let _ = tx.send(true);
    });
    // Until shutdown, then while sessions drain (the listener stays open so
    // probes see `/ready` answer 503 and new upgrades are refused with 503),
    // until they are gone or the grace period has passed.
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if let Some(deadline) = drain_deadline {
            if state.metrics.sessions_active.get() <= 0 || Instant::now() >= deadline {
                break;
            }
        }
        let (stream, _peer) = tokio::select! {
            _ = stop_requested(&mut stopping), if drain_deadline.is_none() => {
                drain_deadline = Some(Instant::now() + state.config.shutdown_grace + Duration::from_secs(1));
                continue;
            }
            _ = tokio::time::sleep(Duration::from_millis(20)), if drain_deadline.is_some() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = state.connections.clone().try_acquire_owned() else {
            state.metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The slot travels with the request, so an upgraded WebSocket keeps
        // holding it after hyper hands the connection over.
        let slot = ConnectionSlot(Arc::new(permit));
        let app = app.clone().layer(axum::Extension(slot.clone()));
        let state = state.clone();
        tokio::spawn(async move {
            match state.tls.clone() {
                None => serve_io(stream, app, &state).await,
                Some(tls) => {
                    // The handshake gets the header-read timeout (see `crate::tls`).
                    let handshake = tls.accept(stream);
                    match tokio::time::timeout(state.config.header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => serve_io(stream, app, &state).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Every connection holds a slot until it is done: a plain HTTP one until its
    // request is answered, an upgraded one until its session has closed. So all
    // slots back means nothing is left; the second past the grace period is for
    // the sessions' close handshakes.
    let deadline = drain_deadline.unwrap_or_else(Instant::now) + Duration::from_secs(1);
    while state.connections.available_permits() < state.config.max_connections
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(
        sessions_left = state.metrics.sessions_active.get(),
        "server stopped"
    );
    Ok(())
}

/// Serves one connection (HTTP/1 with WebSocket upgrades) over any byte
/// stream, with the header-read timeout and graceful shutdown of [`serve`].
pub async fn serve_connection<I>(io: I, state: AppState)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = router(state.clone());
    serve_io(io, app, &state).await;
}

async fn serve_io<I>(io: I, app: Router, state: &AppState)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_read_timeout)
        .max_buf_size(state.config.max_header_bytes);
    let mut stopping = state.shutdown.clone();
    // A connection accepted while draining serves one request (a probe, a
    // refused upgrade) and closes: shutting it down gracefully at once would
    // close it before that request is read.
    let draining = *stopping.borrow();
    if draining {
        builder.keep_alive(false);
    }
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    if draining {
        let _ = tokio::time::timeout(state.config.header_read_timeout * 2, conn).await;
        return;
    }
    tokio::select! {
        done = conn.as_mut() => {
            if let Err(e) = done {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stop_requested(&mut stopping) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(state.config.shutdown_grace, conn).await;
}

/// Resolves once shutdown has been requested (or the sender is gone).
async fn stop_requested(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let ready = state.registry.ready_count();
    let total = state.registry.len();
    Json(json!({
        "status": if ready == total { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "pipelines": total,
        "pipelines_ready": ready,
        "sessions_active": state.metrics.sessions_active.get(),
    }))
}

/// `/ready`, the readiness probe: 200 while serving with every pipeline that
/// must serve loaded (`STREAMHOST_READY_PIPELINES`), 503 `not_ready` naming
/// those that are not, and 503 `draining` from SIGTERM until exit, so a load
/// balancer stops routing here while open sessions finish. `/health` stays
/// the liveness probe (200 while the process serves at all).
async fn ready(State(state): State<AppState>) -> Response {
    if *state.shutdown.borrow() {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    let listed = state.registry.all();
    let missing: Vec<String> = match &state.config.ready_pipelines {
        None => listed
            .iter()
            .filter(|p| p.status != PipelineStatus::Ready)
            .map(|p| p.id.clone())
            .collect(),
        Some(ids) => ids
            .iter()
            .filter(|id| {
                !listed
                    .iter()
                    .any(|p| &p.id == *id && p.status == PipelineStatus::Ready)
            })
            .cloned()
            .collect(),
    };
    if missing.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "pipelines_not_ready": missing })),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `/pipelines`: each pipeline's listing, its version (content hash of the
/// manifest, components and models), when that version loaded (RFC 3339,
/// UTC), and a failed newer candidate beside a version still serving.
async fn pipelines(State(state): State<AppState>) -> Json<serde_json::Value> {
    let list: Vec<_> = state
        .registry
        .all()
        .iter()
        .map(|p| {
            let (status, reason) = match &p.status {
                PipelineStatus::Ready => ("ready", None),
                PipelineStatus::Failed(r) => ("failed", Some(r.clone())),
            };
            json!({
                "id": p.id,
                "description": p.description,
                "status": status,
                "reason": reason,
                "nodes": p.nodes,
                "int8": p.int8,
                "version": p.version,
                "loaded_at": rfc3339(p.loaded_at),
                "candidate": p.candidate.as_ref().map(|c| json!({
                    "version": c.version,
                    "reason": c.reason,
                    "failed_at": rfc3339(c.failed_at),
                })),
            })
        })
        .collect();
    Json(json!({ "pipelines": list }))
}

/// `t` as RFC 3339 in UTC with milliseconds (`2026-12-03T10:31:56.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        let at = |secs: u64, ms: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_796_293_916, 123), "2026-12-03T10:31:56.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }
}
