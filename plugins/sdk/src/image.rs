//! What every image-reading node needs and would otherwise copy: a pixel format's name and size,
//! the check that `data` has exactly `width * height * bpp` bytes (done by
//! [`crate::Inputs::image`], so a node indexes pixels without re-checking), and per-channel byte
//! sums written so that LLVM vectorises them (`simd128` in the plugins' release profile) without
//! `unsafe`: the building block of brightness, colour balance or thumbnails.

use crate::bindings::streamhost::node::types::{Image, PixelFormat};
use crate::Error;

impl PixelFormat {
    /// The format's name as the manifests and replies spell it (`"rgb8"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb8 => "rgb8",
            PixelFormat::Bgr8 => "bgr8",
            PixelFormat::Rgba8 => "rgba8",
            PixelFormat::Gray8 => "gray8",
        }
    }

    /// Bytes per pixel: 3, 3, 4, 1.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 => 4,
            PixelFormat::Gray8 => 1,
        }
    }
}

impl Image {
    /// Bytes per pixel of this image's format.
    pub fn bytes_per_pixel(&self) -> usize {
        self.format.bytes_per_pixel()
    }

    /// `width * height`.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// `Ok` when `data` holds exactly `width * height * bpp` bytes and at least one pixel.
    pub fn check(&self) -> Result<(), Error> {
        let expected = self.pixels() * self.bytes_per_pixel() as u64;
        if self.data.len() as u64 != expected {
            return Err(Error::input(format!(
                "{}x{} {} image needs {expected} bytes, got {}",
                self.width,
                self.height,
                self.format.name(),
                self.data.len()
            )));
        }
        if expected == 0 {
            return Err(Error::input(format!(
                "empty image ({}x{})",
                self.width, self.height
            )));
        }
        Ok(())
    }

    /// The sum of each channel's bytes over all pixels, in the format's own byte order (so
    /// `[b, g, r, 0]` for `bgr8`, `[luma, 0, 0, 0]` for `gray8`).
    pub fn channel_sums(&self) -> [u64; 4] {
        let mut out = [0u64; 4];
        match self.bytes_per_pixel() {
            1 => out[..1].copy_from_slice(&channel_sums::<1>(&self.data)),
            3 => out[..3].copy_from_slice(&channel_sums::<3>(&self.data)),
            _ => out.copy_from_slice(&channel_sums::<4>(&self.data)),
        }
        out
    }
}

/// Per-channel byte sums of tightly packed `BPP`-byte pixels.
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

#[cfg(test)]
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
    fn sums_match_a_plain_loop_for_every_width_and_format() {
        for (format, bpp) in [
            (PixelFormat::Gray8, 1),
            (PixelFormat::Rgb8, 3),
            (PixelFormat::Rgba8, 4),
        ] {
            // 37x5: not a multiple of the 16-pixel period.
            let data: Vec<u8> = (0..37 * 5 * bpp).map(|i| (i * 7 % 256) as u8).collect();
            let mut expected = [0u64; 4];
            for (i, &b) in data.iter().enumerate() {
                expected[i % bpp] += u64::from(b);
            }
            assert_eq!(image(37, 5, format, data).channel_sums(), expected);
        }
        // Large enough to flush the lanes more than once.
        let big = image(4096, 600, PixelFormat::Rgb8, vec![255; 4096 * 600 * 3]);
        assert_eq!(
            big.channel_sums(),
            [255 * 4096 * 600, 255 * 4096 * 600, 255 * 4096 * 600, 0]
        );
    }

    #[test]
    fn check_refuses_a_wrong_length_and_an_empty_image() {
        assert!(image(2, 2, PixelFormat::Rgb8, vec![0; 12]).check().is_ok());
        assert!(matches!(
            image(2, 2, PixelFormat::Rgb8, vec![0; 11]).check(),
            Err(Error::InvalidInput(m)) if m == "2x2 rgb8 image needs 12 bytes, got 11"
        ));
        assert!(image(0, 5, PixelFormat::Gray8, vec![]).check().is_err());
        assert_eq!(PixelFormat::Bgr8.name(), "bgr8");
    }
}
