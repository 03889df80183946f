//! `frame-info`: a stateless streamhost node that reports an image's size, pixel format and mean
//! brightness (Rec. 601 luma, 0..255, 2 decimals) as JSON. The smallest useful node, written on
//! the SDK (`plugins/sdk`) to show its shape: 37 lines of code, not counting comments, blank
//! lines and the two that declare its tests. The SDK checks the image's length, refuses any
//! config key (`NoConfig`), maps `Error` to the WIT `node-error` and sums the channels with
//! vectorised integer loops; the node weighs the channel totals once (exact: the weights are
//! applied to the sums, not per pixel).

use serde::Serialize;
use streamhost_node::{export_node, json, Error, Frame, Inputs, Kind, NoConfig, Node};
use streamhost_node::{PixelFormat, Value};

struct FrameInfo;

#[derive(Serialize)]
struct Info {
    width: u32,
    height: u32,
    format: &'static str,
    bytes_per_pixel: usize,
    mean_brightness: f64,
}

impl Node for FrameInfo {
    type Config = NoConfig;
    const TAKES: &'static [Kind] = &[Kind::Image];
    const GIVES: &'static [Kind] = &[Kind::Json];

    fn new(_: NoConfig) -> Result<Self, Error> {
        Ok(FrameInfo)
    }

    fn process(&mut self, _: &Frame, inputs: &Inputs) -> Result<Value, Error> {
        let image = inputs.image()?;
        // Luma x 1000, summed over all pixels: 299 R + 587 G + 114 B (Rec. 601).
        let weighted = match (image.format, image.channel_sums()) {
            (PixelFormat::Gray8, [y, ..]) => 1000 * y,
            (PixelFormat::Bgr8, [b, g, r, _]) => 299 * r + 587 * g + 114 * b,
            (PixelFormat::Rgb8 | PixelFormat::Rgba8, [r, g, b, _]) => 299 * r + 587 * g + 114 * b,
        };
        let mean = weighted as f64 / (1000.0 * image.pixels() as f64);
        json(&Info {
            width: image.width,
            height: image.height,
            format: image.format.name(),
            bytes_per_pixel: image.bytes_per_pixel(),
            mean_brightness: (mean * 100.0).round() / 100.0,
        })
    }
}

export_node!(FrameInfo);

#[cfg(test)]
mod tests;
