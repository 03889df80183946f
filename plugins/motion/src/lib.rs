//! `motion`: a stateful streamhost node that says how much the picture changed since the previous
//! frame of the session. Each frame is reduced to a 32x24 thumbnail of block-mean luma, so the
//! state is 768 floats whatever the frame size (and frames of different sizes still compare);
//! `motion` is the mean absolute thumbnail difference scaled to 0..1. The state lives in a
//! thread-local because the component model gives the guest one instance per session and calls
//! it one at a time; `init` (called again after a trap) starts the comparison afresh.

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use node_config::parse_config;

use std::cell::RefCell;

use exports::streamhost::node::node::{FrameContext, Guest, Input, NodeError, Signature, Value};
use serde::{Deserialize, Serialize};
use streamhost::node::types::{Image, Kind, PixelFormat};

const THUMB_W: usize = 32;
const THUMB_H: usize = 24;
const DEFAULT_THRESHOLD: f64 = 0.05;

struct Motion;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `moving` is true when `motion` exceeds this (0..=1).
    #[serde(default = "default_threshold")]
    threshold: f64,
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

struct State {
    threshold: f64,
    previous: Option<Vec<f32>>,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State { threshold: DEFAULT_THRESHOLD, previous: None })
    };
}

#[derive(Serialize)]
struct Report {
    motion: f64,
    moving: bool,
    first_frame: bool,
}

impl Guest for Motion {
    fn describe() -> Signature {
        Signature {
            takes: vec![Kind::Image],
            gives: vec![Kind::Json],
        }
    }

    fn init(config: String) -> Result<(), NodeError> {
        let config: Config = parse_config(&config)
            .map_err(|e| NodeError::InvalidConfig(format!("motion config: {e}")))?;
        if !(0.0..=1.0).contains(&config.threshold) {
            return Err(NodeError::InvalidConfig(format!(
                "motion config: threshold must be in 0..=1, got {}",
                config.threshold
            )));
        }
        STATE.with_borrow_mut(|state| {
            state.threshold = config.threshold;
            state.previous = None;
        });
        Ok(())
    }

    fn process(_frame: FrameContext, inputs: Vec<Input>) -> Result<Value, NodeError> {
        let image = inputs
            .iter()
            .find_map(|input| match &input.value {
                Value::Image(image) => Some(image),
                _ => None,
            })
            .ok_or_else(|| NodeError::InvalidInput("motion needs an image input".into()))?;
        let current = thumbnail(image)?;
        let report = STATE.with_borrow_mut(|state| {
            let report = match &state.previous {
                None => Report {
                    motion: 0.0,
                    moving: false,
                    first_frame: true,
                },
                Some(previous) => {
                    let total: f32 = previous
                        .iter()
                        .zip(&current)
                        .map(|(a, b)| (a - b).abs())
                        .sum();
                    let motion = f64::from(total) / (THUMB_W * THUMB_H) as f64 / 255.0;
                    let motion = ((motion * 10_000.0).round() / 10_000.0).clamp(0.0, 1.0);
                    Report {
                        motion,
                        moving: motion > state.threshold,
                        first_frame: false,
                    }
                }
            };
            state.previous = Some(current);
            report
        });
        serde_json::to_string(&report)
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

/// Block-mean luma (0..255) of a `THUMB_W` x `THUMB_H` grid laid over the image, row-major.
/// Blocks are never empty: in an image narrower or shorter than the grid, neighbouring blocks
/// share a pixel row or column.
fn thumbnail(image: &Image) -> Result<Vec<f32>, NodeError> {
    let bpp = match image.format {
        PixelFormat::Gray8 => 1,
        PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
        PixelFormat::Rgba8 => 4,
    };
    let (w, h) = (image.width as usize, image.height as usize);
    let expected = u64::from(image.width) * u64::from(image.height) * bpp as u64;
    if image.data.len() as u64 != expected {
        return Err(NodeError::InvalidInput(format!(
            "{w}x{h} image needs {expected} bytes, got {}",
            image.data.len()
        )));
    }
    if w == 0 || h == 0 {
        return Err(NodeError::InvalidInput(format!("empty image ({w}x{h})")));
    }
    let stride = w * bpp;
    // Block b covers [b * n / blocks, (b + 1) * n / blocks), widened to one pixel if empty.
    let span = |b: usize, n: usize, blocks: usize| {
        let start = b * n / blocks;
        (start, ((b + 1) * n / blocks).max(start + 1))
    };
    let columns: Vec<(usize, usize)> = (0..THUMB_W).map(|bx| span(bx, w, THUMB_W)).collect();
    let mut thumb = Vec::with_capacity(THUMB_W * THUMB_H);
    let mut sums = [0u64; THUMB_W];
    for by in 0..THUMB_H {
        let (y0, y1) = span(by, h, THUMB_H);
        sums.fill(0);
        for row in image.data.chunks_exact(stride).skip(y0).take(y1 - y0) {
            for (sum, &(x0, x1)) in sums.iter_mut().zip(&columns) {
                if let Some(segment) = row.get(x0 * bpp..x1 * bpp) {
                    *sum += luma_x1000(segment, image.format);
                }
            }
        }
        for (sum, &(x0, x1)) in sums.iter().zip(&columns) {
            let count = ((y1 - y0) * (x1 - x0)) as f64;
            thumb.push((*sum as f64 / (1000.0 * count)) as f32);
        }
    }
    Ok(thumb)
}

/// Sum over the pixels of `segment` of Rec. 601 luma x 1000 (299 R + 587 G + 114 B).
fn luma_x1000(segment: &[u8], format: PixelFormat) -> u64 {
    fn sums<const BPP: usize>(segment: &[u8]) -> [u64; BPP] {
        let mut sums = [0u64; BPP];
        for pixel in segment.chunks_exact(BPP) {
            for (sum, &byte) in sums.iter_mut().zip(pixel) {
                *sum += u64::from(byte);
            }
        }
        sums
    }
    match format {
        PixelFormat::Gray8 => 1000 * sums::<1>(segment)[0],
        PixelFormat::Rgb8 => {
            let [r, g, b] = sums::<3>(segment);
            299 * r + 587 * g + 114 * b
        }
        PixelFormat::Bgr8 => {
            let [b, g, r] = sums::<3>(segment);
            299 * r + 587 * g + 114 * b
        }
        PixelFormat::Rgba8 => {
            let [r, g, b, _a] = sums::<4>(segment);
            299 * r + 587 * g + 114 * b
        }
    }
}

export!(Motion);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn test_frame() -> FrameContext {
        FrameContext {
            frame_index: 1,
            received_us: 0,
            pipeline_id: "test".into(),
        }
    }

    fn frame(width: u32, height: u32, fill: impl Fn(u32, u32) -> u8) -> Input {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.push(fill(x, y));
            }
        }
        Input {
            name: "decode".into(),
            value: Value::Image(Image {
                width,
                height,
                format: PixelFormat::Gray8,
                data,
            }),
        }
    }

    fn report(value: Value) -> serde_json::Value {
        match value {
            Value::Json(text) => serde_json::from_str(&text).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn first_frame_then_motion() {
        Motion::init("{\"threshold\": 0.1}".into()).unwrap();
        let first = report(Motion::process(test_frame(), vec![frame(64, 48, |_, _| 0)]).unwrap());
        assert_eq!(
            first,
            serde_json::json!({"motion": 0.0, "moving": false, "first_frame": true})
        );
        let same = report(Motion::process(test_frame(), vec![frame(64, 48, |_, _| 0)]).unwrap());
        assert_eq!(
            same,
            serde_json::json!({"motion": 0.0, "moving": false, "first_frame": false})
        );
        // Left half turns white: half the thumbnail changes by 255.
        let half = report(
            Motion::process(
                test_frame(),
                vec![frame(64, 48, |x, _| if x < 32 { 255 } else { 0 })],
            )
            .unwrap(),
        );
        assert_eq!(
            half,
            serde_json::json!({"motion": 0.5, "moving": true, "first_frame": false})
        );
        // A different frame size still compares (same picture, scaled).
        let scaled = report(
            Motion::process(
                test_frame(),
                vec![frame(640, 480, |x, _| if x < 320 { 255 } else { 0 })],
            )
            .unwrap(),
        );
        assert_eq!(scaled["motion"], 0.0);
        // init starts over.
        Motion::init("{}".into()).unwrap();
        let again = report(Motion::process(test_frame(), vec![frame(5, 3, |_, _| 9)]).unwrap());
        assert_eq!(again["first_frame"], true);
        // Frames smaller than the grid work.
        let tiny = report(Motion::process(test_frame(), vec![frame(1, 1, |_, _| 9)]).unwrap());
        assert_eq!(tiny["motion"], 0.0);
    }

    #[test]
    fn config_and_input_errors() {
        for bad in [
            "{\"threshold\": 1.5}",
            "{\"threshold\": -0.1}",
            "{\"threshold\": \"x\"}",
            "[]",
            "{\"thresh\": 0.1}",
        ] {
            assert!(
                matches!(Motion::init(bad.into()), Err(NodeError::InvalidConfig(_))),
                "{bad}"
            );
        }
        let mut short = frame(4, 4, |_, _| 0);
        if let Value::Image(image) = &mut short.value {
            image.data.pop();
        }
        assert!(matches!(
            Motion::process(test_frame(), vec![short]),
            Err(NodeError::InvalidInput(_))
        ));
        assert!(matches!(
            Motion::process(test_frame(), vec![]),
            Err(NodeError::InvalidInput(_))
        ));
    }
}
