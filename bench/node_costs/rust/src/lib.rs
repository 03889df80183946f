//! The Rust one of the three same-work nodes of `make node-costs`: for each image it replies
//! `{"node":NAME,"frame_index":n,"width":w,"height":h}` (what `streamhost new-node NAME --lang
//! rust` generates), so load, instantiation, call and memory costs compare languages, not work.

wit_bindgen::generate!({ path: "../../../wit", world: "node-world" });

use exports::streamhost::node::node::{Guest, Input, NodeError, Value};
use streamhost::node::types::{FrameContext, Kind, Signature};

const NAME: &str = "bench_rust";

struct Node;

impl Guest for Node {
    fn describe() -> Signature {
        Signature {
            takes: vec![Kind::Image],
            gives: vec![Kind::Json],
        }
    }

    fn init(_config: String) -> Result<(), NodeError> {
        Ok(())
    }

    fn process(frame: FrameContext, inputs: Vec<Input>) -> Result<Value, NodeError> {
        let image = inputs
            .iter()
            .find_map(|input| match &input.value {
                Value::Image(image) => Some(image),
                _ => None,
            })
            .ok_or_else(|| NodeError::InvalidInput(format!("{NAME} needs an image input")))?;
        Ok(Value::Json(format!(
            "{{\"node\":\"{NAME}\",\"frame_index\":{},\"width\":{},\"height\":{}}}",
            frame.frame_index, image.width, image.height
        )))
    }
}

export!(Node);
