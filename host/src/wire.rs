//! The JSON messages the server sends over the WebSocket, and the one place
//! where internal errors become the contract's `{error, detail}`.
//!
//! Every reply a client can see is a variant of [`Reply`]; every error code is a
//! variant of [`ErrorCode`]. Modules below this one return their own typed
//! errors; `From` impls here decide the code and the detail text, so the
//! contract can be read (and changed) in one file. Whether an error closes the
//! session is a property of its code ([`ErrorCode::closes_session`]).

use serde::Serialize;
use serde_json::value::RawValue;

use crate::admission::AdmitError;
use crate::frame::FrameError;
use crate::pipeline::exec::ExecError;

/// The contract's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidPipeline,
    InvalidMessage,
    InvalidFrame,
    FrameTooLarge,
    PipelineFailure,
    InternalError,
    /// Missing or unknown API token (HTTP 401 at the upgrade; never logged).
    Unauthorized,
    /// The tenant may not use this pipeline, or the pipeline asks for more than its quotas.
    Forbidden,
    /// The server's session limit, or the tenant's, is reached (HTTP 503 / 429 at the upgrade).
    TooManySessions,
    /// The client did not take its replies in time (the session is closed).
    SlowConsumer,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidPipeline,
        ErrorCode::InvalidMessage,
        ErrorCode::InvalidFrame,
        ErrorCode::FrameTooLarge,
        ErrorCode::PipelineFailure,
        ErrorCode::InternalError,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::TooManySessions,
        ErrorCode::SlowConsumer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidPipeline => "invalid_pipeline",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::PipelineFailure => "pipeline_failure",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooManySessions => "too_many_sessions",
            ErrorCode::SlowConsumer => "slow_consumer",
        }
    }

    /// The WebSocket close code a session-ending error closes with.
    pub fn close_code(self) -> u16 {
        match self {
            ErrorCode::InvalidMessage => 1003,
            ErrorCode::InvalidFrame => 1007,
            ErrorCode::FrameTooLarge => 1009,
            ErrorCode::InvalidPipeline | ErrorCode::Unauthorized | ErrorCode::Forbidden => 1008,
            ErrorCode::TooManySessions => 1013,
            ErrorCode::PipelineFailure | ErrorCode::InternalError | ErrorCode::SlowConsumer => 1011,
        }
    }

    /// Protocol violations end the session; failures while processing a good
    /// frame are reported for that frame and the session carries on.
    pub fn closes_session(self) -> bool {
        !matches!(self, ErrorCode::PipelineFailure | ErrorCode::InternalError)
    }
}

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WireError {
    pub code: ErrorCode,
    pub detail: String,
}

impl WireError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        WireError {
            code,
            detail: detail.into(),
        }
    }
}

impl From<AdmitError> for WireError {
    fn from(e: AdmitError) -> Self {
        let code = match e {
            AdmitError::Pipeline(_) => ErrorCode::InvalidPipeline,
            AdmitError::OverQuota { .. } => ErrorCode::Forbidden,
        };
        WireError::new(code, e.to_string())
    }
}

impl From<FrameError> for WireError {
    fn from(e: FrameError) -> Self {
        let code = match e {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::NotJpeg | FrameError::Undecodable(_) | FrameError::TooManyPixels { .. } => {
                ErrorCode::InvalidFrame
            }
        };
        WireError::new(code, e.to_string())
    }
}

impl From<ExecError> for WireError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::InvalidFrame(frame) => frame.into(),
            ExecError::Node { .. }
            | ExecError::Deadline { .. }
            | ExecError::ResultTooLarge { .. } => {
                WireError::new(ErrorCode::PipelineFailure, e.to_string())
            }
            // Abandoned frames belong to closed sessions: never sent.
            ExecError::Internal(_) | ExecError::Abandoned { .. } => {
                WireError::new(ErrorCode::InternalError, e.to_string())
            }
        }
    }
}

/// Why a frame was dropped instead of processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The session's previous frame is still in flight (the seed's backpressure).
    Busy,
    /// The session is over its frames-per-second quota.
    RateLimited,
}

impl DropReason {
    /// Every reason (the metric series registered up front).
    pub const ALL: [DropReason; 2] = [DropReason::Busy, DropReason::RateLimited];

    /// The metric label (and the reply's `reason`, which a busy drop omits).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Busy => "busy",
            DropReason::RateLimited => "rate_limited",
        }
    }
}

/// Why a WebSocket upgrade is refused before any WebSocket exists. The reply
/// is an HTTP response with this status and the usual `{error, detail}` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or unknown API token.
    Unauthorized,
    /// `STREAMHOST_MAX_SESSIONS` sessions are open.
    ServerFull,
    /// The tenant's `max_sessions` sessions are open.
    TenantFull,
    /// A browser page from an origin `STREAMHOST_ALLOWED_ORIGINS` does not allow.
    ForeignOrigin,
    /// The server is draining for shutdown: retry, another replica takes it.
    Draining,
}

impl Refusal {
    pub fn http_status(self) -> u16 {
        match self {
            Refusal::Unauthorized => 401,
            Refusal::ServerFull => 503,
            Refusal::TenantFull => 429,
            Refusal::ForeignOrigin => 403,
            Refusal::Draining => 503,
        }
    }

    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::Unauthorized => ErrorCode::Unauthorized,
            // No new code for draining: clients already retry too_many_sessions
            // with backoff, which is what a draining replica wants of them.
            Refusal::ServerFull | Refusal::TenantFull | Refusal::Draining => {
                ErrorCode::TooManySessions
            }
            Refusal::ForeignOrigin => ErrorCode::Forbidden,
        }
    }
}

/// Every message the server sends on the WebSocket.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `{"frame_index":n,"result":{...}}`; the result is already JSON text
    /// (the executor serialised it once, to check its size).
    Result {
        frame_index: u64,
        result: Box<RawValue>,
    },
    /// `{"frame_index":n,"dropped":true}`, with `"reason":"rate_limited"` when
    /// the session's fps quota (not a frame in flight) dropped it.
    Dropped {
        frame_index: u64,
        dropped: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    /// `{"warning":"slow_down"}`
    Warning { warning: &'static str },
    /// `{"frame_index":n,"error":code,"detail":...}` for a frame's failure, or
    /// `{"error":code,"detail":...}` for a session-level error.
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        frame_index: Option<u64>,
        error: ErrorCode,
        detail: String,
    },
}

impl Reply {
    pub fn result(frame_index: u64, result: Box<RawValue>) -> Self {
        Reply::Result {
            frame_index,
            result,
        }
    }

    pub fn dropped(frame_index: u64, why: DropReason) -> Self {
        Reply::Dropped {
            frame_index,
            dropped: true,
            reason: (why != DropReason::Busy).then(|| why.as_str()),
        }
    }

    pub fn slow_down() -> Self {
        Reply::Warning {
            warning: "slow_down",
        }
    }

    pub fn error(frame_index: Option<u64>, err: WireError) -> Self {
        Reply::Error {
            frame_index,
            error: err.code,
            detail: err.detail,
        }
    }

    /// The JSON text; serialising these plain types cannot fail, but if it ever
    /// did the client still gets a well-formed `internal_error`.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"error":"internal_error","detail":"reply could not be encoded"}"#.to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::Value as Json;

    fn parsed(r: Reply) -> Json {
        serde_json::from_str(&r.to_text()).unwrap_or(Json::Null)
    }

    #[test]
    fn admission_errors_map_to_their_codes() {
        use crate::pipeline::registry::LookupError;
        let unknown = WireError::from(AdmitError::from(LookupError::Unknown));
        assert_eq!(unknown.code, ErrorCode::InvalidPipeline);
        assert_eq!(
            unknown.detail,
            "Unknown pipeline_id (GET /pipelines lists the pipelines this client may use)"
        );
        let over = WireError::from(AdmitError::OverQuota {
            pipeline: "ocr".into(),
            reason: "asks for 128 MiB".into(),
        });
        assert_eq!(over.code, ErrorCode::Forbidden);
        assert_eq!(
            over.detail,
            "pipeline 'ocr' exceeds this token's quotas: asks for 128 MiB"
        );
    }

    #[test]
    fn replies_have_the_contract_shapes() -> Result<(), serde_json::Error> {
        assert_eq!(
            parsed(Reply::result(
                3,
                serde_json::value::to_raw_value(&json!({"a":1}))?
            )),
            json!({"frame_index":3,"result":{"a":1}})
        );
        assert_eq!(
            parsed(Reply::dropped(5, DropReason::Busy)),
            json!({"frame_index":5,"dropped":true})
        );
        assert_eq!(
            parsed(Reply::dropped(6, DropReason::RateLimited)),
            json!({"frame_index":6,"dropped":true,"reason":"rate_limited"})
        );
        assert_eq!(parsed(Reply::slow_down()), json!({"warning":"slow_down"}));
        assert_eq!(
            parsed(Reply::error(
                None,
                WireError::new(ErrorCode::InvalidFrame, "Not a valid JPEG image")
            )),
            json!({"error":"invalid_frame","detail":"Not a valid JPEG image"})
        );
        assert_eq!(
            parsed(Reply::error(
                Some(7),
                WireError::new(ErrorCode::PipelineFailure, "node x failed")
            )),
            json!({"frame_index":7,"error":"pipeline_failure","detail":"node x failed"})
        );
        Ok(())
    }

    #[test]
    fn frame_errors_map_to_their_codes_and_contract_details() {
        let e: WireError = FrameError::TooLarge {
            limit: "5MB".into(),
        }
        .into();
        assert_eq!(
            e,
            WireError::new(ErrorCode::FrameTooLarge, "Frame exceeds 5MB")
        );
        let e: WireError = FrameError::NotJpeg.into();
        assert_eq!(
            e,
            WireError::new(ErrorCode::InvalidFrame, "Not a valid JPEG image")
        );
    }

    #[test]
    fn execution_errors_map_to_pipeline_failure_internal_error_or_invalid_frame() {
        let node = ExecError::Node {
            node: "n".into(),
            reason: "trapped: x".into(),
        };
        assert_eq!(
            WireError::from(node),
            WireError::new(ErrorCode::PipelineFailure, "node 'n' trapped: x")
        );
        let late = ExecError::Deadline {
            node: "det".into(),
            budget_ms: 2000,
        };
        assert_eq!(
            WireError::from(late),
            WireError::new(
                ErrorCode::PipelineFailure,
                "node 'det' exceeded the frame's 2000 ms deadline"
            )
        );
        let internal = WireError::from(ExecError::Internal("boom".into()));
        assert_eq!(internal.code, ErrorCode::InternalError);
        let frame = WireError::from(ExecError::InvalidFrame(FrameError::Undecodable(
            "bad huffman".into(),
        )));
        assert_eq!(
            frame,
            WireError::new(
                ErrorCode::InvalidFrame,
                "Not a valid JPEG image: bad huffman"
            )
        );
    }

    #[test]
    fn upgrade_refusals_carry_their_documented_status_and_code() {
        let shown: Vec<(u16, &str)> = [
            Refusal::Unauthorized,
            Refusal::ServerFull,
            Refusal::TenantFull,
            Refusal::ForeignOrigin,
        ]
        .iter()
        .map(|r| (r.http_status(), r.code().as_str()))
        .collect();
        assert_eq!(
            shown,
            [
                (401, "unauthorized"),
                (503, "too_many_sessions"),
                (429, "too_many_sessions"),
                (403, "forbidden")
            ]
        );
    }

    #[test]
    fn only_processing_failures_keep_the_session_open() {
        for code in ErrorCode::ALL {
            let serialised = serde_json::to_value(code).unwrap_or(Json::Null);
            assert_eq!(serialised, Json::String(code.as_str().into()));
        }
        assert!(!ErrorCode::PipelineFailure.closes_session());
        assert!(!ErrorCode::InternalError.closes_session());
        assert!(ErrorCode::InvalidFrame.closes_session());
        assert!(ErrorCode::FrameTooLarge.closes_session());
        assert!(ErrorCode::InvalidMessage.closes_session());
        assert!(ErrorCode::InvalidPipeline.closes_session());
    }
}
