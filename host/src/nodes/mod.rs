//! Native (in-process, trusted) node kinds: pixel work and model inference,
//! the parts of a pipeline where speed matters most.
//!
//! One place per kind, one dispatch point, as mini-redis's `cmd/mod.rs` does
//! for commands: [`NativeKind`] names the kinds (a manifest's `kind`), and each
//! kind's own file says what inputs it takes, how its config is parsed and
//! checked at load, and how it runs on a frame (`check_inputs`,
//! `load_config`, `run`). The `match`es below only route to them. The loader
//! (`pipeline::loader`) plans a node through [`NativeNode::load`], the
//! executor (`pipeline::exec`) runs it through [`NativeNode::run`], and the
//! manifest fuzz target checks configs through [`NativeKind::config`], so a
//! new kind is one file and one arm in each `match` here. What only the
//! executor knows stays there: the Wasm nodes, the DAG's waves, and the fast
//! path that runs a `to_tensor` on the rows of a `jpeg_decode` still
//! decoding ([`row_feed`]).
//!
//! Most kinds are pure functions of one frame's inputs. Four keep state
//! across a session's frames, for pipelines that reuse work on video
//! ([`scene_motion`], [`track_boxes`], [`changed_crops`], [`line_cache`]):
//! their [`SessionState`] is made per session by [`NativeNode::session_state`],
//! owned by the session's runner next to its Wasm instances, handed to
//! [`NativeNode::run`] with each frame, and reset by the runner when a frame
//! fails, so a half-updated state never outlives the frame that left it so.

use std::sync::Arc;

use crate::deadline::FrameDeadline;
use crate::frame::FrameError;
use crate::kinds::{Kind, Kinds, Signature};
use crate::value::Value;

pub mod argmax;
pub mod changed_crops;
pub mod jpeg_decode;
mod jpeg_strict;
pub mod line_cache;
pub mod onnx;
pub mod par;
pub mod row_feed;
pub mod scene_motion;
pub mod text_crop;
pub mod to_tensor;
pub mod track_boxes;

use argmax::ArgmaxConfig;
use changed_crops::ChangedCropsConfig;
use jpeg_decode::JpegDecodeConfig;
use onnx::{OnnxConfig, OnnxModel};
use scene_motion::SceneMotionConfig;
use text_crop::TextCropConfig;
use to_tensor::ToTensorConfig;
use track_boxes::TrackBoxesConfig;

/// The native node kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeKind {
    JpegDecode,
    ToTensor,
    TextCrop,
    Argmax,
    Onnx,
    SceneMotion,
    TrackBoxes,
    ChangedCrops,
    LineCache,
}

/// A native node's config, parsed and checked as at load.
#[derive(Debug, Clone, PartialEq)]
pub enum NativeConfig {
    JpegDecode(JpegDecodeConfig),
    ToTensor(ToTensorConfig),
    TextCrop(TextCropConfig),
    Argmax(ArgmaxConfig),
    Onnx(OnnxConfig),
    SceneMotion(SceneMotionConfig),
    TrackBoxes(TrackBoxesConfig),
    ChangedCrops(ChangedCropsConfig),
    LineCache,
}

/// A native node ready to run: its checked config, or its opened model.
pub enum NativeNode {
    JpegDecode(JpegDecodeConfig),
    ToTensor(ToTensorConfig),
    TextCrop(TextCropConfig),
    Argmax(ArgmaxConfig),
    Onnx(Arc<OnnxModel>),
    SceneMotion(SceneMotionConfig),
    TrackBoxes(TrackBoxesConfig),
    ChangedCrops(ChangedCropsConfig),
    LineCache,
}

/// A native node's memory of the session's earlier frames (see the module
/// doc); `Stateless` for the kinds that keep none.
#[derive(Default)]
pub enum SessionState {
    #[default]
    Stateless,
    SceneMotion(scene_motion::State),
    TrackBoxes(track_boxes::State),
    ChangedCrops(changed_crops::State),
    LineCache(line_cache::State),
}

/// What a native node may use while it runs on one frame.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The decoder's pixel limit (`STREAMHOST_MAX_FRAME_PIXELS`).
    pub max_frame_pixels: u64,
    /// Threads the node may split its work over (one unless its frame is alone).
    pub threads: usize,
    /// Whether its frame is the only one executing.
    pub alone: bool,
    /// The frame's deadline and cancel flag: a node that can stop part-way
    /// (an ONNX run) registers with it; the executor checks it between nodes.
    pub deadline: &'a FrameDeadline,
}

/// Why a native node failed on a frame.
#[derive(Debug, PartialEq)]
pub enum NodeFailure {
    /// The client's frame itself is bad (`invalid_frame`).
    Frame(FrameError),
    /// The node could not do its work; the reason, for `node '<id>' <reason>`.
    Node(String),
}

impl From<FrameError> for NodeFailure {
    fn from(e: FrameError) -> Self {
        NodeFailure::Frame(e)
    }
}

impl NativeKind {
    /// Every native kind, in the order load errors list them.
    pub const ALL: [NativeKind; 9] = [
        NativeKind::JpegDecode,
        NativeKind::ToTensor,
        NativeKind::TextCrop,
        NativeKind::Argmax,
        NativeKind::Onnx,
        NativeKind::SceneMotion,
        NativeKind::TrackBoxes,
        NativeKind::ChangedCrops,
        NativeKind::LineCache,
    ];

    /// The manifest's `kind` for this kind.
    pub fn name(self) -> &'static str {
        match self {
            NativeKind::JpegDecode => "jpeg_decode",
            NativeKind::ToTensor => "to_tensor",
            NativeKind::TextCrop => "text_crop",
            NativeKind::Argmax => "argmax",
            NativeKind::Onnx => "onnx",
            NativeKind::SceneMotion => "scene_motion",
            NativeKind::TrackBoxes => "track_boxes",
            NativeKind::ChangedCrops => "changed_crops",
            NativeKind::LineCache => "line_cache",
        }
    }

    /// Whether nodes of this kind keep state across a session's frames.
    pub fn stateful(self) -> bool {
        matches!(
            self,
            NativeKind::SceneMotion
                | NativeKind::TrackBoxes
                | NativeKind::ChangedCrops
                | NativeKind::LineCache
        )
    }

    /// The native kind a manifest's `kind` names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kinds a node of this kind takes and gives: what its edges are
    /// checked against at load (see [`crate::kinds`]).
    pub fn signature(self) -> Signature {
        let (takes, gives): (&[Kind], Kind) = match self {
            NativeKind::JpegDecode => (&[Kind::Frame], Kind::Image),
            NativeKind::ToTensor => (&[Kind::Image], Kind::Tensors),
            NativeKind::TextCrop => (&[Kind::Image, Kind::Json], Kind::Tensors),
            NativeKind::Argmax | NativeKind::Onnx => (&[Kind::Tensors], Kind::Tensors),
            NativeKind::SceneMotion => (&[Kind::Image], Kind::Json),
            NativeKind::TrackBoxes => (&[Kind::Json], Kind::Json),
            NativeKind::ChangedCrops => (&[Kind::Tensors, Kind::Json], Kind::Tensors),
            NativeKind::LineCache => (&[Kind::Tensors, Kind::Json], Kind::Json),
        };
        Signature::new(Kinds::of(takes), Kinds::of(&[gives]))
    }

    /// Whether a node of this kind may take `inputs` inputs, `from_frame`
    /// when one of them is the client's raw frame (only a decoder may).
    pub fn check_inputs(self, inputs: usize, from_frame: bool) -> Result<(), String> {
        if self != NativeKind::JpegDecode && from_frame {
            return Err(format!(
                "{} cannot take the raw frame; decode it first with a jpeg_decode node",
                self.name()
            ));
        }
        match self {
            NativeKind::JpegDecode => jpeg_decode::check_inputs(inputs, from_frame),
            NativeKind::ToTensor => to_tensor::check_inputs(inputs),
            NativeKind::TextCrop => text_crop::check_inputs(inputs),
            NativeKind::Argmax => argmax::check_inputs(inputs),
            NativeKind::Onnx => onnx::check_inputs(inputs),
            NativeKind::SceneMotion => scene_motion::check_inputs(inputs),
            NativeKind::TrackBoxes => track_boxes::check_inputs(inputs),
            NativeKind::ChangedCrops => changed_crops::check_inputs(inputs),
            NativeKind::LineCache => line_cache::check_inputs(inputs),
        }
    }

    /// A node's TOML config table parsed into this kind's config and checked,
    /// as the loader accepts it.
    pub fn config(self, table: &toml::Table) -> Result<NativeConfig, String> {
        Ok(match self {
            NativeKind::JpegDecode => NativeConfig::JpegDecode(jpeg_decode::load_config(table)?),
            NativeKind::ToTensor => NativeConfig::ToTensor(to_tensor::load_config(table)?),
            NativeKind::TextCrop => NativeConfig::TextCrop(text_crop::load_config(table)?),
            NativeKind::Argmax => NativeConfig::Argmax(argmax::load_config(table)?),
            NativeKind::Onnx => NativeConfig::Onnx(onnx::load_config(table)?),
            NativeKind::SceneMotion => NativeConfig::SceneMotion(scene_motion::load_config(table)?),
            NativeKind::TrackBoxes => NativeConfig::TrackBoxes(track_boxes::load_config(table)?),
            NativeKind::ChangedCrops => {
                NativeConfig::ChangedCrops(changed_crops::load_config(table)?)
            }
            NativeKind::LineCache => {
                typed_config::<NoConfig>(table)?;
                NativeConfig::LineCache
            }
        })
    }
}

impl NativeNode {
    /// A node of `kind` planned: its inputs checked, then its config; an
    /// `onnx` node's model (its `int8_model` when `int8` and it names one)
    /// opened through `open_model`, which takes the file as the manifest
    /// names it.
    pub fn load(
        kind: NativeKind,
        inputs: usize,
        from_frame: bool,
        table: &toml::Table,
        int8: bool,
        open_model: impl FnOnce(&str) -> Result<Arc<OnnxModel>, String>,
    ) -> Result<Self, String> {
        kind.check_inputs(inputs, from_frame)?;
        Ok(match kind.config(table)? {
            NativeConfig::JpegDecode(c) => NativeNode::JpegDecode(c),
            NativeConfig::ToTensor(c) => NativeNode::ToTensor(c),
            NativeConfig::TextCrop(c) => NativeNode::TextCrop(c),
            NativeConfig::Argmax(c) => NativeNode::Argmax(c),
            NativeConfig::Onnx(c) => NativeNode::Onnx(open_model(c.model_file(int8))?),
            NativeConfig::SceneMotion(c) => NativeNode::SceneMotion(c),
            NativeConfig::TrackBoxes(c) => NativeNode::TrackBoxes(c),
            NativeConfig::ChangedCrops(c) => NativeNode::ChangedCrops(c),
            NativeConfig::LineCache => NativeNode::LineCache,
        })
    }

    /// The kind this node is.
    pub fn kind(&self) -> NativeKind {
        match self {
            NativeNode::JpegDecode(_) => NativeKind::JpegDecode,
            NativeNode::ToTensor(_) => NativeKind::ToTensor,
            NativeNode::TextCrop(_) => NativeKind::TextCrop,
            NativeNode::Argmax(_) => NativeKind::Argmax,
            NativeNode::Onnx(_) => NativeKind::Onnx,
            NativeNode::SceneMotion(_) => NativeKind::SceneMotion,
            NativeNode::TrackBoxes(_) => NativeKind::TrackBoxes,
            NativeNode::ChangedCrops(_) => NativeKind::ChangedCrops,
            NativeNode::LineCache => NativeKind::LineCache,
        }
    }

    /// A new session's state for this node: empty memory of earlier frames.
    pub fn session_state(&self) -> SessionState {
        match self {
            NativeNode::SceneMotion(_) => SessionState::SceneMotion(Default::default()),
            NativeNode::TrackBoxes(_) => SessionState::TrackBoxes(Default::default()),
            NativeNode::ChangedCrops(_) => SessionState::ChangedCrops(Default::default()),
            NativeNode::LineCache => SessionState::LineCache(Default::default()),
            _ => SessionState::Stateless,
        }
    }

    /// Runs the node on one frame's inputs (in the order its manifest lists
    /// them, less optional ones whose source was skipped), with its session
    /// state (from [`NativeNode::session_state`]; a stateless kind ignores it).
    pub fn run(
        &self,
        inputs: &[(String, Value)],
        ctx: RunContext<'_>,
        state: &mut SessionState,
    ) -> Result<Value, NodeFailure> {
        match (self, state) {
            (NativeNode::JpegDecode(c), _) => jpeg_decode::run(c, inputs, ctx),
            (NativeNode::ToTensor(c), _) => to_tensor::run(c, inputs, ctx),
            (NativeNode::TextCrop(c), _) => text_crop::run(c, inputs, ctx),
            (NativeNode::Argmax(c), _) => argmax::run(c, inputs, ctx),
            (NativeNode::Onnx(model), _) => onnx::run(model, inputs, ctx),
            (NativeNode::SceneMotion(c), SessionState::SceneMotion(s)) => {
                scene_motion::run(c, inputs, s)
            }
            (NativeNode::TrackBoxes(c), SessionState::TrackBoxes(s)) => {
                track_boxes::run(c, inputs, s)
            }
            (NativeNode::ChangedCrops(c), SessionState::ChangedCrops(s)) => {
                changed_crops::run(c, inputs, s)
            }
            (NativeNode::LineCache, SessionState::LineCache(s)) => line_cache::run(inputs, s),
            (node, _) => Err(NodeFailure::Node(format!(
                "{} was handed another kind's session state",
                node.kind().name()
            ))),
        }
    }
}

/// The config of a kind that takes none: any key is an error.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoConfig {}

/// Parses a node's TOML config table into its typed config.
pub(crate) fn typed_config<T: serde::de::DeserializeOwned>(
    config: &toml::Table,
) -> Result<T, String> {
    toml::Value::Table(config.clone())
        .try_into()
        .map_err(|e: toml::de::Error| format!("bad config: {}", e.message()))
}

/// What an input is, for a node's error ("expects an image, got tensors").
fn kind_of(input: Option<&(String, Value)>) -> &'static str {
    input.map(|(_, v)| v.kind()).unwrap_or("nothing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name_and_only_a_decoder_reads_the_frame() {
        for kind in NativeKind::ALL {
            assert_eq!(NativeKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(NativeKind::from_name("wasm"), None);
        assert_eq!(NativeKind::JpegDecode.check_inputs(1, true), Ok(()));
        assert!(NativeKind::JpegDecode.check_inputs(1, false).is_err());
        for kind in &NativeKind::ALL[1..] {
            let err = kind.check_inputs(1, true).unwrap_err();
            assert!(err.contains("cannot take the raw frame"), "{err}");
        }
    }

    #[test]
    fn an_onnx_node_opens_its_int8_model_only_when_asked_and_named() {
        let table = |text: &str| text.parse::<toml::Table>().unwrap();
        let both = NativeKind::Onnx.config(&table("model = 'a.onnx'\nint8_model = 'a.int8.onnx'"));
        let Ok(NativeConfig::Onnx(both)) = both else {
            panic!("{both:?}")
        };
        assert_eq!(both.model_file(false), "a.onnx");
        assert_eq!(both.model_file(true), "a.int8.onnx");
        let fp32 = NativeKind::Onnx.config(&table("model = 'a.onnx'"));
        let Ok(NativeConfig::Onnx(fp32)) = fp32 else {
            panic!("{fp32:?}")
        };
        assert_eq!(fp32.model_file(true), "a.onnx");
        assert!(NativeKind::Onnx
            .config(&table("model = 'a.onnx'\nextra = 1"))
            .is_err());
    }
}
