//! The bodies of the `cargo fuzz` targets in `fuzz/` that need nothing but
//! the library: frame validation + decode, and manifest parsing + DAG
//! building.
//!
//! They live here, not in the fuzz crate, so that `host/tests/fuzz_regressions.rs`
//! replays the committed corpus and every crash ever found (`fuzz/regressions/`)
//! through exactly the code the fuzzer runs, on stable, in the ordinary test
//! suite. Each body returns `Err` with a description when an input breaks an
//! invariant (a decoded image whose buffer does not match its size, a DAG that
//! does not place every node once, ...); the fuzz targets turn that into a
//! crash, the test into a failure. A panic anywhere below is a bug too.

use crate::config::Config;
use crate::frame::{validate_jpeg, FrameError};
use crate::nodes::jpeg_decode::{decode, decode_feeding, JpegDecodeConfig};
use crate::nodes::to_tensor::{
    geometry, to_tensor, to_tensor_fed, Channels, LimitType, Resize, ToTensorConfig, MAX_SIDE,
};
use crate::nodes::{NativeConfig, NativeKind};
use crate::pipeline::dag::{Dag, Source};
use crate::pipeline::manifest::{valid_id, Manifest, MAX_NODES};
use crate::value::{Image, PixelFormat};
use crate::wire::{ErrorCode, WireError};

/// What an input broke, if anything.
pub type Check = Result<(), String>;

/// The frame size limit the frame target validates against, and its wire label:
/// the server's defaults.
fn frame_limit() -> &'static (usize, String) {
    static LIMIT: std::sync::OnceLock<(usize, String)> = std::sync::OnceLock::new();
    LIMIT.get_or_init(|| {
        let config = Config::default();
        (config.max_frame_bytes, config.max_frame_label())
    })
}
/// Pixel limit for decoding: small, so that a header declaring a huge image
/// (a decompression bomb) is refused before any pixel buffer exists.
pub const MAX_PIXELS: u64 = 4_000_000;

/// The decoder configuration used for `data`: derived from its length, so
/// that every output layout and DCT scale is exercised without taking bytes
/// away from the JPEG itself.
pub fn decode_config_for(data: &[u8]) -> JpegDecodeConfig {
    let format = match data.len() % 4 {
        0 => PixelFormat::Rgb8,
        1 => PixelFormat::Bgr8,
        2 => PixelFormat::Rgba8,
        _ => PixelFormat::Gray8,
    };
    let min_long_side = match (data.len() / 4) % 4 {
        0 => None,
        1 => Some(1),
        2 => Some(100),
        _ => Some(1000),
    };
    JpegDecodeConfig {
        format,
        min_long_side,
    }
}

/// `validate_jpeg`, then (if it passes) `jpeg_decode::decode`, as a session
/// does with each binary message.
pub fn frame_decode(data: &[u8]) -> Check {
    let (max_frame_bytes, label) = frame_limit();
    match validate_jpeg(data, *max_frame_bytes, label) {
        Ok(()) => {
            if data.len() < 4 || data[..2] != [0xFF, 0xD8] || data[data.len() - 2..] != [0xFF, 0xD9]
            {
                return Err("validate_jpeg passed a frame without SOI/EOI markers".into());
            }
        }
        Err(FrameError::TooLarge { .. }) if data.len() > *max_frame_bytes => return Ok(()),
        Err(FrameError::NotJpeg) => return Ok(()),
        Err(e) => return Err(format!("validate_jpeg: unexpected error {e:?}")),
    }
    let config = decode_config_for(data);
    let decoded = decode(data, &config, MAX_PIXELS);
    fed_agrees(data, &config, &decoded)?;
    match decoded {
        Ok(image) => {
            if !image.is_consistent() {
                return Err(format!(
                    "decoded {}x{} {:?} with {} bytes",
                    image.width,
                    image.height,
                    image.format,
                    image.data.len()
                ));
            }
            if image.width == 0 || image.height == 0 {
                return Err("decoded an empty image".into());
            }
            if u64::from(image.width) * u64::from(image.height) > MAX_PIXELS {
                return Err(format!(
                    "decoded {}x{}, over the {MAX_PIXELS} pixel limit",
                    image.width, image.height
                ));
            }
            if image.format != config.format {
                return Err(format!(
                    "asked for {:?}, got {:?}",
                    config.format, image.format
                ));
            }
            Ok(())
        }
        Err(e) => {
            let sane = match &e {
                FrameError::Undecodable(_) => true,
                FrameError::TooManyPixels { width, height, .. } => {
                    (*width as u64).saturating_mul(*height as u64) > MAX_PIXELS
                }
                FrameError::TooLarge { .. } | FrameError::NotJpeg => false,
            };
            let wire = WireError::from(e.clone());
            if !sane || wire.code != ErrorCode::InvalidFrame || wire.detail.is_empty() {
                return Err(format!("decode: unexpected error {e:?} -> {wire:?}"));
            }
            Ok(())
        }
    }
}

/// The same frame decoded while a consumer reads its rows
/// (`jpeg_decode::decode_feeding`, what a frame alone does) gives what
/// `decode` gave: the same image or the same error; on success the consumer
/// saw every row, and a `to_tensor` on the rows as they came is the one on the
/// finished image.
fn fed_agrees(
    data: &[u8],
    config: &JpegDecodeConfig,
    decoded: &Result<Image, FrameError>,
) -> Check {
    let tensor_cfg = ToTensorConfig {
        name: "x".into(),
        resize: Resize::Fit {
            limit_side_len: 64,
            limit_type: LimitType::Max,
            multiple: 32,
        },
        channels: Channels::Rgb,
        scale: 1.0 / 255.0,
        mean: [0.5; 3],
        std: [0.5; 3],
    };
    // Two consumers at once: one keeps the rows, one computes a tensor.
    let (fed, results) = decode_feeding(data, config, MAX_PIXELS, 2, |k, mut feed| {
        if k == 1 {
            return (None, to_tensor_fed(&mut feed, &tensor_cfg));
        }
        let mut rows = Vec::new();
        let mut y = 0;
        while let Some(row) = feed.row(y) {
            rows.extend_from_slice(row);
            y += 1;
        }
        (Some(rows), None)
    });
    let mut results = results.into_iter().map(|r| r.unwrap_or_default());
    let (seen, tensors) = (
        results.next().and_then(|r| r.0),
        results.next().and_then(|r| r.1),
    );
    match (decoded, fed) {
        (Ok(want), Ok(got)) => {
            if (got.width, got.height, got.format) != (want.width, want.height, want.format)
                || got.data != want.data
            {
                return Err("decode_feeding decoded a different image than decode".into());
            }
            if seen.as_ref() != Some(&want.data) {
                return Err("the feed's rows differ from the decoded image".into());
            }
            // Gray images included: both refuse them with the same error.
            if tensors != Some(to_tensor(want, &tensor_cfg, 1)) {
                return Err("to_tensor on fed rows differs from to_tensor on the image".into());
            }
            Ok(())
        }
        (Err(want), Err(got)) if *want == got => Ok(()),
        (want, got) => Err(format!(
            "decode gave {:?}, decode_feeding {:?}",
            want.as_ref().map(|_| ()),
            got.map(|_| ())
        )),
    }
}

/// Image sizes every `to_tensor` resize in a manifest is checked against.
const GEOMETRY_SIZES: [(u32, u32); 5] = [(1, 1), (7, 3), (640, 480), (4096, 1), (1, 4096)];

/// `Manifest::parse` on UTF-8 input, then `Dag::build`, then the typed configs
/// of the native nodes and the resize geometry of `to_tensor` nodes, as the
/// loader checks a manifest and the executor later uses it.
pub fn manifest(data: &[u8]) -> Check {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let Ok(m) = Manifest::parse(text) else {
        return Ok(());
    };
    if !valid_id(&m.id) || m.nodes.len() > MAX_NODES || m.nodes.iter().any(|n| !valid_id(&n.id)) {
        return Err("Manifest::parse accepted a bad id or too many nodes".into());
    }
    for n in &m.nodes {
        native_config(&n.kind, &n.config)?;
    }
    match Dag::build(&m) {
        Ok(dag) => check_dag(&m, &dag),
        Err(e) if e.to_string().is_empty() => Err("empty DagError message".into()),
        Err(_) => Ok(()),
    }
}

/// What the loader accepts of a native node's config, through the same
/// dispatch point ([`NativeKind::config`]); for `to_tensor`, the resize
/// geometry of what it accepts.
fn native_config(kind: &str, config: &toml::Table) -> Check {
    let Some(kind) = NativeKind::from_name(kind) else {
        return Ok(());
    };
    if let Ok(NativeConfig::ToTensor(cfg)) = kind.config(config) {
        for (w, h) in GEOMETRY_SIZES {
            check_geometry(&cfg.resize, w, h)?;
        }
    }
    Ok(())
}

/// The placement `to_tensor` computes must fit its canvas whenever the node
/// would go on to use it (canvas within `MAX_SIDE`, resized size non-zero).
fn check_geometry(resize: &Resize, w: u32, h: u32) -> Check {
    let (rw, rh, cw, ch, px, py) = geometry(resize, w, h);
    if cw > MAX_SIDE || ch > MAX_SIDE || rw == 0 || rh == 0 {
        return Ok(());
    }
    if u64::from(px) + u64::from(rw) > u64::from(cw)
        || u64::from(py) + u64::from(rh) > u64::from(ch)
    {
        return Err(format!(
            "{resize:?} on {w}x{h}: {rw}x{rh} at ({px},{py}) overflows the {cw}x{ch} canvas"
        ));
    }
    Ok(())
}

/// A built DAG must have one input list per node, referring only to nodes,
/// place every node in exactly one wave after all its inputs, and name an
/// existing output node.
fn check_dag(m: &Manifest, dag: &Dag) -> Check {
    let n = m.nodes.len();
    if dag.inputs.len() != n || dag.output >= n {
        return Err(format!(
            "dag has {} input lists and output {} for {n} nodes",
            dag.inputs.len(),
            dag.output
        ));
    }
    let mut wave_of = vec![None; n];
    for (w, wave) in dag.waves.iter().enumerate() {
        for &i in wave {
            match wave_of.get_mut(i) {
                Some(slot @ None) => *slot = Some(w),
                _ => return Err(format!("node {i} placed twice or out of range")),
            }
        }
    }
    for (i, edges) in dag.inputs.iter().enumerate() {
        let Some(wi) = wave_of[i] else {
            return Err(format!("node {i} is in no wave"));
        };
        for e in edges {
            if let Source::Node(j) = e.source {
                match wave_of.get(j).copied().flatten() {
                    Some(wj) if wj < wi => {}
                    _ => return Err(format!("node {i} (wave {wi}) runs before its input {j}")),
                }
            }
        }
    }
    Ok(())
}
