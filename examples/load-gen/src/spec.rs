//! What to run: [`LoadSpec`], its validation, and the stream URL it makes.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::InvalidHeaderValue;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::error::LoadError;

/// The endpoint path appended to a URL that names only a host.
pub const STREAM_PATH: &str = "/ws/video/stream";
/// Most sessions one run may open.
pub const MAX_SESSIONS: usize = 10_000;
/// Fastest `fps` accepted; beyond it use `flood`.
pub const MAX_FPS: f64 = 100_000.0;

/// Everything a load run needs.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `ws://HOST:PORT` (the stream path is added) or a full `ws://HOST:PORT/path` URL;
    /// `pipeline_id` is always appended to the query.
    pub url: String,
    pub pipeline: String,
    /// Concurrent sessions, each its own connection (reconnecting under `churn`).
    pub sessions: usize,
    /// Frames per second per session; 0 with `flood` off is closed loop: the next frame goes
    /// as soon as the previous one is answered.
    pub fps: f64,
    /// Send as fast as the socket takes frames, reading replies concurrently.
    pub flood: bool,
    /// How long sessions send; draining and closing come after.
    pub duration: Duration,
    /// Frames to send, cycled (each session starts at a different offset).
    pub frames: Vec<Bytes>,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// If set, each connection is cut abruptly after a random lifetime in `[0.5, 1.5] x churn`
    /// and the session reconnects at once.
    pub churn: Option<Duration>,
    /// At the end, how long to wait for outstanding replies before closing.
    pub drain_timeout: Duration,
    /// Most unanswered frames one connection may have (flood and paced modes wait or skip
    /// beyond it); at most [`crate::ledger::MAX_OUTSTANDING`].
    pub window: usize,
    pub seed: u64,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            url: "ws://127.0.0.1:8000".to_string(),
            pipeline: "frame_info".to_string(),
            sessions: 1,
            fps: 0.0,
            flood: false,
            duration: Duration::from_secs(10),
            frames: Vec::new(),
            token: None,
            churn: None,
            drain_timeout: Duration::from_secs(5),
            window: crate::ledger::MAX_OUTSTANDING,
            seed: 1,
        }
    }
}

/// How a session paces its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One frame in flight: the next is sent when the previous one is answered.
    ClosedLoop,
    /// A fixed rate, independent of replies (the server may drop).
    Paced,
    /// As fast as the socket accepts.
    Flood,
}

impl LoadSpec {
    pub fn mode(&self) -> Mode {
        if self.flood {
            Mode::Flood
        } else if self.fps > 0.0 {
            Mode::Paced
        } else {
            Mode::ClosedLoop
        }
    }

    /// Time between frames in paced mode.
    pub fn interval(&self) -> Option<Duration> {
        match self.mode() {
            Mode::Paced => Duration::try_from_secs_f64(1.0 / self.fps).ok(),
            Mode::ClosedLoop | Mode::Flood => None,
        }
    }

    /// The full stream URL, `pipeline_id` included.
    pub fn stream_url(&self) -> String {
        stream_url(&self.url, &self.pipeline)
    }

    /// The `Authorization` header value, if a token is set.
    pub(crate) fn auth_header(&self) -> Result<Option<HeaderValue>, LoadError> {
        self.token
            .as_deref()
            .map(bearer_auth_header)
            .transpose()
            .map_err(|_| LoadError::InvalidSpec("token is not a valid header value".to_string()))
    }

    /// Checks everything that would otherwise fail in every session alike.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: &str| Err(LoadError::InvalidSpec(m.to_string()));
        if self.sessions == 0 || self.sessions > MAX_SESSIONS {
            return bad(&format!("sessions must be 1..={MAX_SESSIONS}"));
        }
        if self.frames.is_empty() {
            return bad("no frames to send");
        }
        if !(self.fps.is_finite() && (0.0..=MAX_FPS).contains(&self.fps)) {
            return bad(&format!("fps must be between 0 and {MAX_FPS}"));
        }
        if self.flood && self.fps > 0.0 {
            return bad("flood and fps > 0 exclude each other");
        }
        if self.window == 0 || self.window > crate::ledger::MAX_OUTSTANDING {
            return bad(&format!(
                "window must be 1..={}",
                crate::ledger::MAX_OUTSTANDING
            ));
        }
        if self.duration.is_zero() {
            return bad("duration must be positive");
        }
        if self.churn.is_some_and(|c| c < Duration::from_millis(1)) {
            return bad("churn must be at least 1 ms");
        }
        let url = self.stream_url();
        if let Err(e) = url.as_str().into_client_request() {
            return bad(&format!("bad URL {url}: {e}"));
        }
        self.auth_header().map(drop)
    }
}

/// `base` (with [`STREAM_PATH`] added when it names no path) plus `pipeline_id=<pipeline>`.
pub fn stream_url(base: &str, pipeline: &str) -> String {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let has_path = base
        .get(after_scheme..)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .is_some_and(|path| path != "/" && !path.starts_with("/?"));
    let base = if has_path {
        base.to_string()
    } else {
        let (host, query) = match base.find('?') {
            Some(i) => base.split_at(i),
            None => (base, ""),
        };
        format!("{}{STREAM_PATH}{query}", host.trim_end_matches('/'))
    };
    with_pipeline_query(&base, pipeline)
}

/// `base` with `pipeline_id=<pipeline>` (percent-encoded) added to its query
/// string; shared with `examples/stream-client`.
pub fn with_pipeline_query(base: &str, pipeline: &str) -> String {
    let sep = if base.ends_with('?') || base.ends_with('&') {
        ""
    } else if base.contains('?') {
        "&"
    } else {
        "?"
    };
    format!("{base}{sep}pipeline_id={}", encode_query_value(pipeline))
}

/// `Bearer <token>` as an `Authorization` header value, marked sensitive (kept out of debug
/// output); shared with `examples/stream-client`.
pub fn bearer_auth_header(token: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Percent-encodes all but RFC 3986 unreserved characters.
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LoadSpec {
        LoadSpec {
            frames: vec![Bytes::from_static(b"\xff\xd8\xff\xd9")],
            ..LoadSpec::default()
        }
    }

    #[test]
    fn url_forms() {
        assert_eq!(
            stream_url("ws://h:8000", "frame_info"),
            "ws://h:8000/ws/video/stream?pipeline_id=frame_info"
        );
        assert_eq!(
            stream_url("ws://h:8000/", "ocr"),
            "ws://h:8000/ws/video/stream?pipeline_id=ocr"
        );
        assert_eq!(
            stream_url("ws://h:8000/ws/video/stream", "ocr"),
            "ws://h:8000/ws/video/stream?pipeline_id=ocr"
        );
        assert_eq!(
            stream_url("ws://h/custom?x=1", "ocr"),
            "ws://h/custom?x=1&pipeline_id=ocr"
        );
        assert_eq!(
            stream_url("ws://h?x=1", "a b"),
            "ws://h/ws/video/stream?x=1&pipeline_id=a%20b"
        );
    }

    #[test]
    fn bearer_header() -> Result<(), InvalidHeaderValue> {
        let value = bearer_auth_header("t0k.en")?;
        assert_eq!(value, "Bearer t0k.en");
        assert!(value.is_sensitive());
        assert!(bearer_auth_header("bad\ntoken").is_err());
        let with_token = LoadSpec {
            token: Some("t".into()),
            ..spec()
        };
        assert_eq!(
            with_token.auth_header().ok().flatten(),
            Some(HeaderValue::from_static("Bearer t"))
        );
        assert_eq!(spec().auth_header().ok().flatten(), None);
        Ok(())
    }

    #[test]
    fn modes() {
        let mut s = spec();
        assert_eq!(s.mode(), Mode::ClosedLoop);
        assert_eq!(s.interval(), None);
        s.fps = 50.0;
        assert_eq!(s.mode(), Mode::Paced);
        assert_eq!(s.interval(), Some(Duration::from_millis(20)));
        s.fps = 0.0;
        s.flood = true;
        assert_eq!(s.mode(), Mode::Flood);
    }

    #[test]
    fn validation() {
        assert!(spec().validate().is_ok());
        type Breaker = Box<dyn Fn(&mut LoadSpec)>;
        let cases: Vec<Breaker> = vec![
            Box::new(|s| s.sessions = 0),
            Box::new(|s| s.frames.clear()),
            Box::new(|s| s.fps = f64::NAN),
            Box::new(|s| s.fps = -1.0),
            Box::new(|s| {
                s.fps = 5.0;
                s.flood = true;
            }),
            Box::new(|s| s.duration = Duration::ZERO),
            Box::new(|s| s.churn = Some(Duration::ZERO)),
            Box::new(|s| s.url = "not a url".into()),
            Box::new(|s| s.token = Some("bad\ntoken".into())),
        ];
        for (i, break_it) in cases.iter().enumerate() {
            let mut s = spec();
            break_it(&mut s);
            assert!(s.validate().is_err(), "case {i} accepted");
        }
    }
}
