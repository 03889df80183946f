//! One session's node, driven as the WIT exports drive it. `init` builds the node from the
//! manifest config (so a bad config fails the pipeline's load check, not a frame), `process`
//! hands it each frame, and every [`Error`] becomes the WIT `node-error` in [`init`] and
//! [`process`] and nowhere else.
//! [`Session`] is a plain value so that native unit tests can run a node exactly as the host
//! does; `export_node!` keeps one in a `thread_local` [`Slot`] per component instance.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::bindings::streamhost::node::types::{FrameContext, Input, NodeError, Signature, Value};
use crate::{Error, Frame, Inputs, Node};

/// A node built from its config, with the state it keeps across a session's frames.
pub struct Session<N: Node> {
    node: N,
}

impl<N: Node> Session<N> {
    /// The kinds the node takes and gives (the WIT `describe`).
    pub fn describe() -> Signature {
        Signature {
            takes: N::TAKES.to_vec(),
            gives: N::GIVES.to_vec(),
        }
    }

    /// Builds the node from the manifest config as JSON (the WIT `init`): `""` counts as `{}`,
    /// anything but an object is refused, and a config serde cannot read is `invalid-config`.
    pub fn start(config: &str) -> Result<Self, Error> {
        let config: N::Config = node_config::parse_config(config).map_err(Error::config)?;
        Ok(Session {
            node: N::new(config)?,
        })
    }

    /// Answers one frame (the WIT `process`).
    pub fn process(&mut self, frame: &Frame, inputs: Vec<Input>) -> Result<Value, Error> {
        self.node.process(frame, &Inputs::new(inputs))
    }

    /// The node itself, e.g. to look at its state in a test.
    pub fn node(&mut self) -> &mut N {
        &mut self.node
    }
}

/// Where `export_node!` keeps the instance's session: empty until `init` succeeds.
pub type Slot<N> = RefCell<Option<Session<N>>>;

/// The WIT `init` on the instance's slot: a new session replaces any earlier one.
pub fn init<N: Node>(slot: &'static LocalKey<Slot<N>>, config: &str) -> Result<(), NodeError> {
    let session = Session::start(config).map_err(NodeError::from)?;
    slot.with_borrow_mut(|s| *s = Some(session));
    Ok(())
}

/// The WIT `process` on the instance's slot.
pub fn process<N: Node>(
    slot: &'static LocalKey<Slot<N>>,
    frame: FrameContext,
    inputs: Vec<Input>,
) -> Result<Value, NodeError> {
    slot.with_borrow_mut(|s| match s {
        Some(session) => Ok(session.process(&Frame::from(frame), inputs)?),
        None => Err(NodeError::Failed(
            "process called before a successful init".into(),
        )),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{json, Kind};

    /// Counts frames and sums the frame indexes it saw; `step` from config.
    struct Counter {
        step: u64,
        seen: u64,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CounterConfig {
        #[serde(default = "one")]
        step: u64,
    }

    fn one() -> u64 {
        1
    }

    impl Node for Counter {
        type Config = CounterConfig;
        const TAKES: &'static [Kind] = &[Kind::Json];
        const GIVES: &'static [Kind] = &[Kind::Json, Kind::Detections];

        fn new(config: CounterConfig) -> Result<Self, Error> {
            if config.step == 0 {
                return Err(Error::config("step must be at least 1"));
            }
            Ok(Counter {
                step: config.step,
                seen: 0,
            })
        }

        fn process(&mut self, frame: &Frame, inputs: &Inputs) -> Result<Value, Error> {
            if inputs.all().is_empty() {
                return Err(Error::input("needs an input"));
            }
            self.seen += self.step;
            json(
                &serde_json::json!({"index": frame.index, "seen": self.seen, "pipeline": frame.pipeline_id}),
            )
        }
    }

    fn frame(index: u64) -> FrameContext {
        FrameContext {
            frame_index: index,
            received_us: 0,
            pipeline_id: "p".into(),
        }
    }

    fn frame_of(index: u64) -> Frame {
        Frame::from(frame(index))
    }

    fn one_input() -> Vec<Input> {
        vec![Input::new("up", Value::Json("{}".into()))]
    }

    thread_local! {
        static SLOT: Slot<Counter> = const { RefCell::new(None) };
    }

    #[test]
    fn describe_lists_the_declared_kinds() {
        let s = Session::<Counter>::describe();
        assert_eq!(s.takes, vec![Kind::Json]);
        assert_eq!(s.gives, vec![Kind::Json, Kind::Detections]);
    }

    #[test]
    fn state_carries_across_frames_and_errors_map_to_node_errors() {
        let mut s = Session::<Counter>::start(r#"{"step":2}"#).unwrap();
        for (i, index) in [0u64, 3].into_iter().enumerate() {
            let Value::Json(text) = s.process(&frame_of(index), one_input()).unwrap() else {
                unreachable!()
            };
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                v,
                serde_json::json!({"index": index, "seen": 2 * (i + 1), "pipeline": "p"})
            );
        }
        assert_eq!(
            s.process(&frame_of(4), vec![]),
            Err(Error::input("needs an input"))
        );
        // The failed frame left the state alone.
        assert_eq!(s.node().seen, 4);
    }

    #[test]
    fn config_is_parsed_with_serde_and_refused_as_invalid_config() {
        assert!(Session::<Counter>::start("").is_ok());
        assert!(Session::<Counter>::start("{}").is_ok());
        for bad in ["[]", r#"{"stp":1}"#, r#"{"step":"x"}"#, "{oops"] {
            assert!(
                matches!(Session::<Counter>::start(bad), Err(Error::InvalidConfig(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Session::<Counter>::start(r#"{"step":0}"#).err(),
            Some(Error::config("step must be at least 1"))
        );
    }

    #[test]
    fn the_slot_refuses_process_before_init_and_init_starts_afresh() {
        assert!(matches!(
            process(&SLOT, frame(0), one_input()),
            Err(NodeError::Failed(_))
        ));
        init(&SLOT, "{}").unwrap();
        process(&SLOT, frame(0), one_input()).unwrap();
        process(&SLOT, frame(1), one_input()).unwrap();
        assert_eq!(
            SLOT.with_borrow(|s| s.as_ref().map(|s| s.node.seen)),
            Some(2)
        );
        // A failed init leaves the previous session (the host discards the instance anyway).
        assert!(matches!(
            init(&SLOT, "[]"),
            Err(NodeError::InvalidConfig(_))
        ));
        init(&SLOT, r#"{"step":5}"#).unwrap();
        assert_eq!(
            SLOT.with_borrow(|s| s.as_ref().map(|s| s.node.seen)),
            Some(0)
        );
    }
}
