//! The server's text replies: [`RawReply`], the one parser of their JSON (shared with
//! `examples/stream-client`), and the load generator's classification of it into [`Reply`].
//!
//! A reply's kind is told by which keys it carries: `frame_index` + `error` is an error
//! answering that frame, `frame_index` + `dropped: true` a drop (perhaps with a `reason`),
//! `frame_index` + `result` a result; without `frame_index`, `error` is a session-level error
//! and otherwise `warning` a hint. The contract's fatal codes are followed by a close from the
//! server, so outstanding frames after one are not the server's fault. Each client maps a
//! [`RawReply`] to the shape it needs, so the stream client keeps its own classification.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

/// Error codes after which the server closes the session.
pub(crate) const FATAL_CODES: [&str; 4] = [
    "invalid_pipeline",
    "invalid_message",
    "frame_too_large",
    "invalid_frame",
];

/// The keys of one server reply that tell its kind, as parsed from the JSON text; unknown keys
/// are ignored. Which keys are present is left to each client to interpret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawReply {
    /// `frame_index`: the frame this reply answers (the server counts from 1).
    pub frame_index: Option<u64>,
    /// A non-null `result` is present (its content is not kept).
    pub has_result: bool,
    /// `dropped: true`.
    pub dropped: bool,
    /// `reason` (given with a drop), as text: a string as is, any other JSON value as JSON.
    pub reason: Option<String>,
    /// `error`: the error code.
    pub error: Option<String>,
    /// `detail` (given with an error), as text like `reason`.
    pub detail: Option<String>,
    /// `warning`: the hint, such as `slow_down`.
    pub warning: Option<String>,
}

/// The union of all known keys, as they come on the wire.
#[derive(Deserialize)]
struct Wire {
    frame_index: Option<u64>,
    result: Option<IgnoredAny>,
    #[serde(default)]
    dropped: bool,
    reason: Option<Value>,
    error: Option<String>,
    detail: Option<Value>,
    warning: Option<String>,
}

/// A free-form field as text: a string as is, `null` as absent, anything else as its JSON.
fn text(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

impl RawReply {
    /// Parses one text message; `None` unless it is a JSON object whose known keys have the
    /// expected types (`frame_index` a non-negative integer, `dropped` a boolean, `error` and
    /// `warning` strings).
    pub fn parse(text_message: &str) -> Option<Self> {
        // Only an object is a reply (serde would also read a struct from a positional array).
        if !text_message.trim_start().starts_with('{') {
            return None;
        }
        let wire = serde_json::from_str::<Wire>(text_message).ok()?;
        Some(Self {
            frame_index: wire.frame_index,
            has_result: wire.result.is_some(),
            dropped: wire.dropped,
            reason: text(wire.reason),
            error: wire.error,
            detail: text(wire.detail),
            warning: wire.warning,
        })
    }
}

/// One server message, as the load generator counts it.
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

pub(crate) fn parse(text: &str) -> Reply {
    let Some(raw) = RawReply::parse(text) else {
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
            reason: raw.reason,
        },
        (Some(frame_index), None, _) if raw.has_result => Reply::Result { frame_index },
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
    fn raw_fields() {
        assert_eq!(
            RawReply::parse(
                r#" {"frame_index":5,"result":{"w":1},"dropped":true,"reason":{"q":2},"error":"e","detail":"d","warning":"w","extra":[1]}"#
            ),
            Some(RawReply {
                frame_index: Some(5),
                has_result: true,
                dropped: true,
                reason: Some(r#"{"q":2}"#.into()),
                error: Some("e".into()),
                detail: Some("d".into()),
                warning: Some("w".into()),
            })
        );
        // `null` is the same as absent.
        assert_eq!(
            RawReply::parse(r#"{"result":null,"reason":null,"detail":null}"#),
            Some(RawReply::default())
        );
        assert_eq!(
            RawReply::parse(r#"{"detail":42}"#).and_then(|r| r.detail),
            Some("42".into())
        );
        for text in [
            "nope",
            "[]",
            "[1,{},false,null,null,null,null]",
            r#"{"frame_index":-1}"#,
            r#"{"dropped":"yes"}"#,
            r#"{"error":1}"#,
            r#"{"warning":{}}"#,
        ] {
            assert_eq!(RawReply::parse(text), None, "{text}");
        }
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
