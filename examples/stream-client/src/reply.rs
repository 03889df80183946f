//! Telling the server's text replies apart.
//!
//! The server answers every binary message (frame) with exactly one JSON object carrying the
//! `frame_index` it assigned (counting from 1, dropped frames included), and may also send
//! messages that belong to no frame: a `{"warning":"slow_down"}` hint, or one fatal
//! `{"error":..,"detail":..}` just before it closes the session. Whether an error is fatal is
//! a property of its code, never of whether it carries a `frame_index`: a JPEG with good
//! markers that fails to decode is answered `{"frame_index":n,"error":"invalid_frame",..}` and
//! the session closes with 1007. The shapes, in this order:
//!
//! | `frame_index` | other keys                                  | meaning                                  |
//! |---------------|---------------------------------------------|------------------------------------------|
//! | yes           | `error`: `pipeline_failure`/`internal_error` | the frame failed; the session stays open |
//! | either        | `error`: any other code                      | fatal; the server closes next            |
//! | yes           | `dropped: true`                             | dropped by backpressure                  |
//! | yes           | `result`                                    | the pipeline's output for that frame     |
//! | no            | `warning`                                   | unsolicited hint                         |
//!
//! Anything else (including text that is not JSON) is [`Reply::Unrecognized`], counted and
//! printed but never fatal to the client: an example client should survive a server that adds
//! fields or message kinds.
//!
//! The JSON itself is parsed by the load generator's [`RawReply`] (one parser for both
//! clients); this module only maps its keys to the stream client's own [`Reply`] by the table
//! above, keeping each error's `detail`.

use streamhost_load::RawReply;

/// The error codes that answer one frame and leave the session open; every other code ends it.
pub const PER_FRAME_ERRORS: [&str; 2] = ["pipeline_failure", "internal_error"];

/// One classified server message.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `{"frame_index":n,"result":{...}}`
    Result { frame_index: u64 },
    /// `{"frame_index":n,"dropped":true}`
    Dropped { frame_index: u64 },
    /// `{"frame_index":n,"error":"pipeline_failure"|"internal_error","detail":"..."}`
    FrameError {
        frame_index: u64,
        error: String,
        detail: String,
    },
    /// `{"warning":"slow_down"}` (or any other warning string)
    Warning { warning: String },
    /// `{"error":"invalid_frame"|...,"detail":"..."}`: any code but the per-frame ones, with
    /// the frame's index when it answers one (a JPEG that failed to decode).
    Fatal {
        frame_index: Option<u64>,
        error: String,
        detail: String,
    },
    /// Valid UTF-8 that matched none of the shapes above.
    Unrecognized,
}

impl Reply {
    /// The frame this reply answers, if it answers one.
    pub fn frame_index(&self) -> Option<u64> {
        match self {
            Reply::Result { frame_index }
            | Reply::Dropped { frame_index }
            | Reply::FrameError { frame_index, .. } => Some(*frame_index),
            Reply::Fatal { frame_index, .. } => *frame_index,
            Reply::Warning { .. } | Reply::Unrecognized => None,
        }
    }
}

/// Classifies one text message from the server.
pub fn parse(text: &str) -> Reply {
    let Some(raw) = RawReply::parse(text) else {
        return Reply::Unrecognized;
    };
    let detail = raw.detail.unwrap_or_default();
    match (raw.frame_index, raw.error, raw.warning) {
        (Some(frame_index), Some(error), _) if PER_FRAME_ERRORS.contains(&error.as_str()) => {
            Reply::FrameError {
                frame_index,
                error,
                detail,
            }
        }
        (frame_index, Some(error), _) => Reply::Fatal {
            frame_index,
            error,
            detail,
        },
        (Some(frame_index), None, _) if raw.dropped => Reply::Dropped { frame_index },
        (Some(frame_index), None, _) if raw.has_result => Reply::Result { frame_index },
        (Some(_), None, _) => Reply::Unrecognized,
        (None, _, Some(warning)) => Reply::Warning { warning },
        (None, None, None) => Reply::Unrecognized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result() {
        let r = parse(r#"{"frame_index":3,"result":{"width":640,"height":480}}"#);
        assert_eq!(r, Reply::Result { frame_index: 3 });
        assert_eq!(r.frame_index(), Some(3));
    }

    #[test]
    fn empty_result_object_is_still_a_result() {
        assert_eq!(
            parse(r#"{"frame_index":1,"result":{}}"#),
            Reply::Result { frame_index: 1 }
        );
    }

    #[test]
    fn dropped() {
        assert_eq!(
            parse(r#"{"frame_index":7,"dropped":true}"#),
            Reply::Dropped { frame_index: 7 }
        );
    }

    #[test]
    fn dropped_false_without_result_is_unrecognized() {
        assert_eq!(
            parse(r#"{"frame_index":7,"dropped":false}"#),
            Reply::Unrecognized
        );
    }

    #[test]
    fn per_frame_error() {
        assert_eq!(
            parse(r#"{"frame_index":2,"error":"pipeline_failure","detail":"node ocr trapped"}"#),
            Reply::FrameError {
                frame_index: 2,
                error: "pipeline_failure".into(),
                detail: "node ocr trapped".into()
            }
        );
    }

    #[test]
    fn warning() {
        let r = parse(r#"{"warning":"slow_down"}"#);
        assert_eq!(
            r,
            Reply::Warning {
                warning: "slow_down".into()
            }
        );
        assert_eq!(r.frame_index(), None);
    }

    #[test]
    fn fatal() {
        assert_eq!(
            parse(r#"{"error":"invalid_frame","detail":"Not a valid JPEG image"}"#),
            Reply::Fatal {
                frame_index: None,
                error: "invalid_frame".into(),
                detail: "Not a valid JPEG image".into()
            }
        );
    }

    #[test]
    fn a_decode_level_invalid_frame_is_fatal_though_it_answers_a_frame() {
        let r = parse(
            r#"{"frame_index":4,"error":"invalid_frame","detail":"Not a valid JPEG image: bad huffman"}"#,
        );
        assert_eq!(
            r,
            Reply::Fatal {
                frame_index: Some(4),
                error: "invalid_frame".into(),
                detail: "Not a valid JPEG image: bad huffman".into()
            }
        );
        assert_eq!(r.frame_index(), Some(4));
        let internal = parse(r#"{"frame_index":5,"error":"internal_error","detail":"x"}"#);
        assert!(matches!(internal, Reply::FrameError { frame_index: 5, .. }));
    }

    #[test]
    fn fatal_without_detail() {
        assert_eq!(
            parse(r#"{"error":"invalid_pipeline"}"#),
            Reply::Fatal {
                frame_index: None,
                error: "invalid_pipeline".into(),
                detail: String::new()
            }
        );
    }

    #[test]
    fn non_string_detail_is_kept_as_json() {
        assert_eq!(
            parse(r#"{"error":"frame_too_large","detail":{"limit":5242880}}"#),
            Reply::Fatal {
                frame_index: None,
                error: "frame_too_large".into(),
                detail: r#"{"limit":5242880}"#.into()
            }
        );
    }

    #[test]
    fn extra_fields_are_ignored() {
        assert_eq!(
            parse(r#"{"frame_index":4,"result":{},"elapsed_ms":3.2}"#),
            Reply::Result { frame_index: 4 }
        );
    }

    #[test]
    fn garbage_is_unrecognized() {
        assert_eq!(parse("not json"), Reply::Unrecognized);
        assert_eq!(parse("[1,2]"), Reply::Unrecognized);
        assert_eq!(parse("{}"), Reply::Unrecognized);
        assert_eq!(
            parse(r#"{"frame_index":-1,"result":{}}"#),
            Reply::Unrecognized
        );
    }
}
