//! `frame-info`: a stateless streamhost node that reports an image's size, pixel format and mean
//! brightness (Rec. 601 luma, 0..255) as JSON. It is the smallest useful node and the template
//! for new ones: bindings come straight from `wit/node.wit`, bad input becomes a `node-error`
//! rather than a trap, and the pixel loop sums bytes into per-lane integer accumulators over
//! 16-pixel periods, so LLVM turns it into `simd128` code without any `unsafe` (the mean is then
//! exact: weights are applied once, to the channel totals).

wit_bindgen::generate!({ path: "../../wit/v0.1.0", world: "node-world" });

use node_config::parse_config;

use exports::streamhost::node::node::{Guest, Input, NodeError, Value};
use serde::{Deserialize, Serialize};
use streamhost::node::types::{Image, PixelFormat};

struct FrameInfo;

/// The node takes no settings; `deny_unknown_fields` turns a misspelt manifest into an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {}

#[derive(Serialize)]
struct Info {
    width: u32,
    height: u32,
    format: &'static str,
    bytes_per_pixel: u32,
    mean_brightness: f64,
}

impl Guest for FrameInfo {
    fn init(config: String) -> Result<(), NodeError> {
        parse_config::<Config>(&config)
            .map(|_| ())
            .map_err(|e| NodeError::InvalidConfig(format!("frame-info takes no config: {e}")))
    }

    fn process(inputs: Vec<Input>) -> Result<Value, NodeError> {
        let image = inputs
            .iter()
            .find_map(|input| match &input.value {
                Value::Image(image) => Some(image),
                _ => None,
            })
            .ok_or_else(|| NodeError::InvalidInput("frame-info needs an image input".into()))?;
        let info = describe(image)?;
        serde_json::to_string(&info)
            .map(Value::Json)
            .map_err(|e| NodeError::Failed(format!("cannot serialise result: {e}")))
    }
}

fn format_name(format: PixelFormat) -> (&'static str, usize) {
    match format {
        PixelFormat::Rgb8 => ("rgb8", 3),
        PixelFormat::Bgr8 => ("bgr8", 3),
        PixelFormat::Rgba8 => ("rgba8", 4),
        PixelFormat::Gray8 => ("gray8", 1),
    }
}

fn describe(image: &Image) -> Result<Info, NodeError> {
    let (format, bpp) = format_name(image.format);
    let pixels = u64::from(image.width) * u64::from(image.height);
    let expected = pixels * bpp as u64;
    if image.data.len() as u64 != expected {
        return Err(NodeError::InvalidInput(format!(
            "{}x{} {format} image needs {expected} bytes, got {}",
            image.width,
            image.height,
            image.data.len()
        )));
    }
    if pixels == 0 {
        return Err(NodeError::InvalidInput(format!(
            "empty image ({}x{})",
            image.width, image.height
        )));
    }
    // Luma x 1000, summed over all pixels: 299 R + 587 G + 114 B (Rec. 601).
    let weighted: u64 = match image.format {
        PixelFormat::Gray8 => 1000 * channel_sums::<1>(&image.data)[0],
        PixelFormat::Rgb8 => {
            let [r, g, b] = channel_sums::<3>(&image.data);
            299 * r + 587 * g + 114 * b
        }
        PixelFormat::Bgr8 => {
            let [b, g, r] = channel_sums::<3>(&image.data);
            299 * r + 587 * g + 114 * b
        }
        PixelFormat::Rgba8 => {
            let [r, g, b, _a] = channel_sums::<4>(&image.data);
            299 * r + 587 * g + 114 * b
        }
    };
    let mean = weighted as f64 / (1000.0 * pixels as f64);
    Ok(Info {
        width: image.width,
        height: image.height,
        format,
        bytes_per_pixel: bpp as u32,
        mean_brightness: (mean * 100.0).round() / 100.0,
    })
}

/// Per-channel byte sums of tightly packed `BPP`-byte pixels (`data.len()` is a multiple of BPP).
///
/// Bytes are added into `16 * BPP` u32 lanes, one period of 16 pixels at a time (lane `i` always
/// holds channel `i % BPP`): a plain element-wise add that vectorises. Lanes are flushed into
/// u64 totals every 65 536 periods, before 255 x 65 536 could overflow them.
fn channel_sums<const BPP: usize>(data: &[u8]) -> [u64; BPP] {
    const FLUSH_PERIODS: usize = 1 << 16;
    let period = 16 * BPP;
    let mut totals = [0u64; BPP];
    let mut lanes = [0u32; 64];
    let (body, tail) = data.split_at(data.len() - data.len() % period);
    for block in body.chunks(period * FLUSH_PERIODS) {
        for chunk in block.chunks_exact(period) {
            for (lane, &byte) in lanes.iter_mut().zip(chunk) {
                *lane += u32::from(byte);
            }
        }
        for (i, lane) in lanes.iter_mut().take(period).enumerate() {
            totals[i % BPP] += u64::from(*lane);
            *lane = 0;
        }
    }
    for (i, &byte) in tail.iter().enumerate() {
        totals[i % BPP] += u64::from(byte);
    }
    totals
}

export!(FrameInfo);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32, format: PixelFormat, data: Vec<u8>) -> Image {
        Image {
            width,
            height,
            format,
            data,
        }
    }

    #[test]
    fn mean_matches_the_per_pixel_formula() {
        // 37x5 (not a multiple of the 16-pixel period) with varied pixels.
        let (w, h) = (37u32, 5u32);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
        let expected: f64 = data
            .chunks_exact(3)
            .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .sum::<f64>()
            / f64::from(w * h);
        let info = describe(&image(w, h, PixelFormat::Rgb8, data.clone())).unwrap();
        assert_eq!(info.mean_brightness, (expected * 100.0).round() / 100.0);
        assert_eq!(info.format, "rgb8");
        // The same bytes read as BGR swap the red and blue weights.
        let bgr = describe(&image(w, h, PixelFormat::Bgr8, data)).unwrap();
        assert_ne!(bgr.mean_brightness, info.mean_brightness);
    }

    #[test]
    fn formats() {
        let gray = describe(&image(3, 1, PixelFormat::Gray8, vec![0, 100, 200])).unwrap();
        assert_eq!(gray.mean_brightness, 100.0);
        let rgba = describe(&image(1, 1, PixelFormat::Rgba8, vec![255, 255, 255, 0])).unwrap();
        assert_eq!(rgba.mean_brightness, 255.0);
        let red = describe(&image(1, 1, PixelFormat::Rgb8, vec![255, 0, 0])).unwrap();
        assert_eq!(red.mean_brightness, 76.25);
        // Large enough to flush the lanes more than once.
        let big = describe(&image(
            4096,
            600,
            PixelFormat::Rgb8,
            vec![255; 4096 * 600 * 3],
        ))
        .unwrap();
        assert_eq!(big.mean_brightness, 255.0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let short = describe(&image(2, 2, PixelFormat::Rgb8, vec![0; 11]));
        assert!(matches!(short, Err(NodeError::InvalidInput(_))));
        let empty = describe(&image(0, 5, PixelFormat::Gray8, vec![]));
        assert!(matches!(empty, Err(NodeError::InvalidInput(_))));
        let none = FrameInfo::process(vec![Input {
            name: "x".into(),
            value: Value::Json("{}".into()),
        }]);
        assert!(matches!(none, Err(NodeError::InvalidInput(_))));
        assert!(FrameInfo::init("{}".into()).is_ok());
        assert!(matches!(
            FrameInfo::init("[]".into()),
            Err(NodeError::InvalidConfig(_))
        ));
        assert!(matches!(
            FrameInfo::init("{\"x\":1}".into()),
            Err(NodeError::InvalidConfig(_))
        ));
    }
}
