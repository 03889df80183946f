//! Opening one WebSocket connection, and telling a refusal (an HTTP answer to the upgrade)
//! from a failure to reach the server at all.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the TCP connect plus upgrade may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug)]
pub(crate) enum Connected {
    Open(Box<Ws>),
    /// The server answered the upgrade with an HTTP status; `code` is the body's `error`.
    Refused {
        code: String,
    },
    /// No HTTP answer: the reason, for the report.
    Failed(String),
}

pub(crate) async fn connect(url: &str, auth: Option<&HeaderValue>) -> Connected {
    let mut request = match url.into_client_request() {
        Ok(r) => r,
        Err(e) => return Connected::Failed(format!("bad URL {url}: {e}")),
    };
    if let Some(value) = auth {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, value.clone());
    }
    // Nagle off: small replies and closed-loop frames should not wait for an ACK.
    let connecting = tokio_tungstenite::connect_async_with_config(request, None, true);
    match timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Connected::Failed(format!(
            "connect timed out after {}s",
            CONNECT_TIMEOUT.as_secs()
        )),
        Ok(Ok((ws, _response))) => Connected::Open(Box::new(ws)),
        Ok(Err(WsError::Http(response))) => Connected::Refused {
            code: refusal_code(response.status().as_u16(), response.body().as_deref()),
        },
        Ok(Err(e)) => Connected::Failed(e.to_string()),
    }
}

/// The `error` field of a refusal's JSON body, or `http_<status>`.
pub(crate) fn refusal_code(status: u16, body: Option<&[u8]>) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        error: String,
    }
    body.and_then(|b| serde_json::from_slice::<Body>(b).ok())
        .map(|b| b.error)
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| format!("http_{status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes() {
        assert_eq!(
            refusal_code(
                503,
                Some(br#"{"error":"too_many_sessions","detail":"1024 open"}"#)
            ),
            "too_many_sessions"
        );
        assert_eq!(refusal_code(401, Some(b"nope")), "http_401");
        assert_eq!(refusal_code(429, None), "http_429");
        assert_eq!(refusal_code(403, Some(br#"{"error":""}"#)), "http_403");
    }
}
