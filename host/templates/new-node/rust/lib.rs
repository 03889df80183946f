//! `{{name}}`: a streamhost pipeline node in Rust, made by `streamhost new-node`.
//!
//! It answers each frame with `{"node":"{{name}}","frame_index":n,"width":w,"height":h}`; make
//! `process` do your own work. `make plugins` builds it into `target/plugins/{{name}}.wasm`, and
//! `pipelines/{{name}}.toml` runs it after `jpeg_decode`. The SDK it uses is `plugins/sdk`
//! (`cd plugins && cargo doc -p streamhost-node-sdk --open`); `cd plugins && cargo test -p
//! {{name}}` runs tests natively.

use serde::{Deserialize, Serialize};
use streamhost_node::{export_node, json, Error, Frame, Inputs, Kind, Node, Value};

/// The node's `config` table in `pipelines/{{name}}.toml`, handed over as JSON and read with
/// serde; a key not declared here is refused (the pipeline then fails its load check).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {}

/// One value per session: its fields keep their values from one frame to the next.
struct {{Type}};

#[derive(Serialize)]
struct Reply<'a> {
    node: &'a str,
    frame_index: u64,
    width: u32,
    height: u32,
}

impl Node for {{Type}} {
    type Config = Config;
    /// What the node reads (the decoded image) and what it returns (JSON).
    const TAKES: &'static [Kind] = &[Kind::Image];
    const GIVES: &'static [Kind] = &[Kind::Json];

    fn new(_config: Config) -> Result<Self, Error> {
        Ok({{Type}})
    }

    fn process(&mut self, frame: &Frame, inputs: &Inputs) -> Result<Value, Error> {
        let image = inputs.image()?;
        json(&Reply {
            node: "{{name}}",
            frame_index: frame.index,
            width: image.width,
            height: image.height,
        })
    }
}

export_node!({{Type}});
