//! The WebSocket endpoint: authentication and admission before the upgrade,
//! then one task per connection (`session_loop`), reading frames, admitting
//! or dropping them, and writing exactly one reply per frame.
//!
//! Authentication happens before the upgrade (see [`upgrade`]); the token is
//! taken from the request and never logged. Refusals there are plain HTTP
//! responses with the contract's `{error, detail}` body; everything after the
//! upgrade is a WebSocket message or a close frame.
//!
//! Close codes (see `ErrorCode::close_code`): 1008 `invalid_pipeline`,
//! `forbidden`, and `unauthorized` when the tenants file is reloaded without
//! the token a session authenticated with; 1003 `invalid_message`, 1007 `invalid_frame`, 1009
//! `frame_too_large`, 1001 server shutdown or idle timeout, 1000 when the
//! client closed first.

use std::collections::HashMap;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::state::{AppState, ConnectionSlot};
use crate::tenants::AuthError;
use crate::wire::Refusal;

mod session_loop;

/// The subprotocol a browser offers beside `bearer.<token>`; the server selects it.
pub const SUBPROTOCOL: &str = "streamhost";
/// Prefix of the subprotocol that carries a browser's API token.
const BEARER_SUBPROTOCOL: &str = "bearer.";

/// The API token, from (in order) `Authorization: Bearer`, a `bearer.<token>`
/// subprotocol, or the `access_token` query parameter. Never logged.
fn presented_token<'a>(
    headers: &'a HeaderMap,
    query: &'a HashMap<String, String>,
) -> Option<&'a str> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let from_protocol = || {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix(BEARER_SUBPROTOCOL))
    };
    from_header
        .or_else(from_protocol)
        .or_else(|| query.get("access_token").map(String::as_str))
}

/// An HTTP-level refusal (before any WebSocket exists): the refusal's status
/// and `{error, detail}`.
pub fn refusal(why: Refusal, detail: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(why.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(json!({ "error": why.code().as_str(), "detail": detail.into() })),
    )
        .into_response()
}

/// `GET /ws/video/stream?pipeline_id=ID`
///
/// Refusals before the upgrade are HTTP responses with the `{error, detail}`
/// body: 403 `forbidden` (a page from an origin not allowed, see
/// [`crate::origin`]), 401 `unauthorized` (bad or missing token), 503
/// `too_many_sessions` (server limit, or the server draining for shutdown)
/// and 429 `too_many_sessions` (the tenant's `max_sessions`).
///
/// The origin and token are checked before the request is required to be an
/// upgrade: a browser cannot read the body of a refused upgrade (its
/// WebSocket only reports close code 1006), so the live view asks again with
/// a plain `fetch` carrying the same token and shows the `{error, detail}` it
/// gets. Such a plain GET that passes both checks gets the upgrade rejection
/// (426), and it is neither counted nor logged as a refused connection.
pub async fn upgrade(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectionSlot>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let is_upgrade = ws.is_ok();
    let refuse = |why: Refusal, detail: String| {
        if is_upgrade {
            state.metrics.error(why.code());
        }
        refusal(why, detail)
    };
    if *state.shutdown.borrow() {
        return refuse(
            Refusal::Draining,
            "The server is shutting down; reconnect (another replica takes the session)".into(),
        );
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !crate::origin::allowed(origin, host, &state.config.allowed_origins) {
        let origin = origin.unwrap_or_default();
        if is_upgrade {
            // The origin is the requesting page's, not a secret; cut so a log line stays small.
            let shown: String = origin.chars().take(200).collect();
            tracing::warn!(origin = %shown, "connection refused: origin not allowed");
        }
        return refuse(
            Refusal::ForeignOrigin,
            format!(
                "Pages from origin {origin:.200} may not open WebSockets here (STREAMHOST_ALLOWED_ORIGINS)"
            ),
        );
    }
    let (tenant, digest) = match state.tenancy.identify(presented_token(&headers, &query)) {
        Ok(t) => t,
        Err(e) => {
            let reason = match e {
                AuthError::Missing => "missing",
                AuthError::Invalid => "invalid",
            };
            if is_upgrade {
                tracing::warn!(token = reason, "connection refused: unauthorized");
            }
            return refuse(Refusal::Unauthorized, e.to_string());
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let Ok(server_slot) = state.sessions.clone().try_acquire_owned() else {
        tracing::warn!(limit = state.config.max_sessions, tenant = %tenant.id, "connection refused: session limit reached");
        return refuse(
            Refusal::ServerFull,
            "Server is at its session limit; retry later".into(),
        );
    };
    let Some(tenant_slot) = tenant.try_session() else {
        tracing::warn!(tenant = %tenant.id, limit = tenant.quotas.max_sessions, "connection refused: tenant session quota reached");
        return refuse(
            Refusal::TenantFull,
            format!(
                "Your quota of {} concurrent sessions is in use",
                tenant.quotas.max_sessions
            ),
        );
    };
    let pipeline_id = query.get("pipeline_id").cloned();
    let limit = state.config.ws_message_limit();
    ws.protocols([SUBPROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            session_loop::session(
                socket,
                state,
                pipeline_id,
                (tenant, digest),
                (server_slot, tenant_slot, connection),
            )
        })
}
