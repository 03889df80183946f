//! Classifying the server's text replies by which keys they carry.
//!
//! `frame_index` + `error` is an error answering that frame, `frame_index` + `dropped: true` a
//! drop (perhaps with a `reason`), `frame_index` + `result` a result; without `frame_index`,
//! `warning` is a hint and `error` a session-level error. The contract's fatal codes are followed
//! by a close from the server, so outstanding frames after one are not the server's fault.

use serde::Deserialize;
use serde_json::Value;

/// Error codes after which the server closes the session.
pub(crate) const FATAL_CODES: [&str; 4] = [
    "invalid_pipeline",
    "invalid_message",
    "frame_too_large",
    "invalid_frame",
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Result {
        frame_index: u64,
    },
    Dropped {
        frame_index: u64,
        reason: Option<String>,
    },
    Error {
        frame_index: Option<u64>,
        code: String,
        fatal: bool,
    },
    Warning(String),
    Unrecognized,
}

#[derive(Deserialize)]
struct Raw {
    frame_index: Option<u64>,
    result: Option<Value>,
    #[serde(default)]
    dropped: bool,
    reason: Option<Value>,
    error: Option<String>,
    warning: Option<String>,
}

pub(crate) fn parse(text: &str) -> Reply {
    let Ok(raw) = serde_json::from_str::<Raw>(text) else {
        return Reply::Unrecognized;
    };
    match (raw.frame_index, raw.error, raw.warning) {
        (frame_index, Some(code), _) => Reply::Error {
            fatal: frame_index.is_none() || FATAL_CODES.contains(&code.as_str()),
            frame_index,
            code,
        },
        (Some(frame_index), None, _) if raw.dropped => Reply::Dropped {
            frame_index,
            reason: match raw.reason {
                Some(Value::String(s)) => Some(s),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            },
        },
        (Some(frame_index), None, _) if raw.result.is_some() => Reply::Result { frame_index },
        (None, None, Some(warning)) => Reply::Warning(warning),
        _ => Reply::Unrecognized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            parse(r#"{"frame_index":3,"result":{"w":1}}"#),
            Reply::Result { frame_index: 3 }
        );
        assert_eq!(
            parse(r#"{"frame_index":4,"dropped":true}"#),
            Reply::Dropped {
                frame_index: 4,
                reason: None
            }
        );
        assert_eq!(
            parse(r#"{"frame_index":4,"dropped":true,"reason":"busy"}"#),
            Reply::Dropped {
                frame_index: 4,
                reason: Some("busy".into())
            }
        );
        assert_eq!(
            parse(r#"{"warning":"slow_down"}"#),
            Reply::Warning("slow_down".into())
        );
    }

    #[test]
    fn errors_and_fatality() {
        assert_eq!(
            parse(r#"{"frame_index":2,"error":"pipeline_failure","detail":"x"}"#),
            Reply::Error {
                frame_index: Some(2),
                code: "pipeline_failure".into(),
                fatal: false
            }
        );
        assert_eq!(
            parse(r#"{"frame_index":2,"error":"invalid_frame","detail":"x"}"#),
            Reply::Error {
                frame_index: Some(2),
                code: "invalid_frame".into(),
                fatal: true
            }
        );
        assert_eq!(
            parse(r#"{"error":"invalid_pipeline","detail":"x"}"#),
            Reply::Error {
                frame_index: None,
                code: "invalid_pipeline".into(),
                fatal: true
            }
        );
    }

    #[test]
    fn garbage() {
        for text in [
            "nope",
            "[]",
            "{}",
            r#"{"frame_index":1,"dropped":false}"#,
            r#"{"frame_index":-1,"result":{}}"#,
        ] {
            assert_eq!(parse(text), Reply::Unrecognized, "{text}");
        }
    }
}
