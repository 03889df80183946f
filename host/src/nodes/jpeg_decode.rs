//! The native JPEG decoder node (`kind = "jpeg_decode"`), built on mozjpeg
//! (libjpeg-turbo's SIMD decoder).
//!
//! libjpeg reports fatal errors by unwinding out of C, so every call into it
//! sits inside `catch_unwind`: a corrupt frame becomes
//! [`FrameError::Undecodable`], never a crashed worker. The header is read
//! before any pixel buffer is allocated, so a frame that declares absurd
//! dimensions (a decompression bomb) is refused for the price of parsing a few
//! hundred bytes. When the consumer needs less than full resolution, the IDCT
//! itself scales by 1/2, 1/4 or 1/8, which is several times cheaper than
//! decoding full size and resizing after.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mozjpeg::decompress::DecompressBuilder;
use mozjpeg::ColorSpace;

use super::jpeg_strict::strict_error_mgr;
use serde::Deserialize;

use crate::frame::FrameError;
use crate::value::{Image, PixelFormat};

/// The node's manifest `config` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JpegDecodeConfig {
    /// Output pixel layout (default `rgb8`).
    #[serde(default = "default_format")]
    pub format: PixelFormat,
    /// If set, decode at the smallest DCT scale (1/8, 1/4, 1/2 or 1) whose
    /// longer side is still at least this many pixels.
    #[serde(default)]
    pub min_long_side: Option<u32>,
}

fn default_format() -> PixelFormat {
    PixelFormat::Rgb8
}

impl Default for JpegDecodeConfig {
    fn default() -> Self {
        JpegDecodeConfig {
            format: default_format(),
            min_long_side: None,
        }
    }
}

/// The DCT scale numerator (out of 8) for decoding a `long_side` image for a
/// consumer that needs at least `wanted` pixels on its long side.
pub fn dct_scale_numerator(long_side: usize, wanted: Option<u32>) -> u8 {
    let Some(wanted) = wanted else { return 8 };
    for numerator in [1u8, 2, 4] {
        // libjpeg rounds scaled sizes up.
        if (long_side * numerator as usize).div_ceil(8) >= wanted as usize {
            return numerator;
        }
    }
    8
}

/// Decodes `jpeg` into the configured layout, refusing frames whose header
/// declares more than `max_pixels` pixels.
pub fn decode(
    jpeg: &[u8],
    config: &JpegDecodeConfig,
    max_pixels: u64,
) -> Result<Image, FrameError> {
    match catch_unwind(AssertUnwindSafe(|| {
        decode_unguarded(jpeg, config, max_pixels)
    })) {
        Ok(result) => result,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("decoder error");
            Err(FrameError::Undecodable(reason.trim().to_string()))
        }
    }
}

fn decode_unguarded(
    jpeg: &[u8],
    config: &JpegDecodeConfig,
    max_pixels: u64,
) -> Result<Image, FrameError> {
    let io_err = |e: std::io::Error| FrameError::Undecodable(e.to_string());
    let mut dec = DecompressBuilder::new()
        .with_err(strict_error_mgr())
        .from_mem(jpeg)
        .map_err(io_err)?;
    let (width, height) = dec.size();
    if width == 0 || height == 0 {
        return Err(FrameError::Undecodable("zero-sized image".into()));
    }
    if (width as u64).saturating_mul(height as u64) > max_pixels {
        return Err(FrameError::TooManyPixels {
            width,
            height,
            max_pixels,
        });
    }
    dec.scale(dct_scale_numerator(width.max(height), config.min_long_side));
    let color = match config.format {
        PixelFormat::Rgb8 => ColorSpace::JCS_EXT_RGB,
        PixelFormat::Bgr8 => ColorSpace::JCS_EXT_BGR,
        PixelFormat::Rgba8 => ColorSpace::JCS_EXT_RGBA,
        PixelFormat::Gray8 => ColorSpace::JCS_GRAYSCALE,
    };
    let mut started = dec.to_colorspace(color).map_err(io_err)?;
    let (out_w, out_h) = (started.width(), started.height());
    let data = started.read_scanlines::<u8>().map_err(io_err)?;
    started.finish().map_err(io_err)?;
    let image = Image {
        width: u32::try_from(out_w)
            .map_err(|_| FrameError::Undecodable("width overflow".into()))?,
        height: u32::try_from(out_h)
            .map_err(|_| FrameError::Undecodable("height overflow".into()))?,
        format: config.format,
        data,
    };
    if !image.is_consistent() {
        return Err(FrameError::Undecodable("truncated image data".into()));
    }
    Ok(image)
}

/// Test and example helper: encodes an RGB buffer as a baseline JPEG.
pub fn encode_rgb(
    width: usize,
    height: usize,
    rgb: &[u8],
    quality: f32,
) -> Result<Vec<u8>, String> {
    catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut comp = mozjpeg::Compress::new(ColorSpace::JCS_RGB);
        comp.set_size(width, height);
        comp.set_quality(quality);
        let mut started = comp.start_compress(Vec::new())?;
        started.write_scanlines(rgb)?;
        started.finish()
    }))
    .map_err(|_| "encoder error".to_string())?
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Vec<u8> {
        (0..w * h)
            .flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 128])
            .collect()
    }

    fn sample(w: usize, h: usize) -> Vec<u8> {
        encode_rgb(w, h, &gradient(w, h), 90.0).unwrap_or_default()
    }

    #[test]
    fn decodes_to_the_requested_layout() {
        let jpeg = sample(64, 48);
        for (format, bpp) in [
            (PixelFormat::Rgb8, 3),
            (PixelFormat::Bgr8, 3),
            (PixelFormat::Rgba8, 4),
            (PixelFormat::Gray8, 1),
        ] {
            let cfg = JpegDecodeConfig {
                format,
                min_long_side: None,
            };
            let img = decode(&jpeg, &cfg, 1 << 30).map_err(|e| e.to_string());
            let img = match img {
                Ok(i) => i,
                Err(e) => return assert_eq!(e, ""),
            };
            assert_eq!((img.width, img.height, img.format), (64, 48, format));
            assert_eq!(img.data.len(), 64 * 48 * bpp);
        }
        // RGB and BGR are the same pixels with channels swapped.
        let rgb = decode(&jpeg, &JpegDecodeConfig::default(), 1 << 30)
            .map(|i| i.data)
            .unwrap_or_default();
        let bgr = decode(
            &jpeg,
            &JpegDecodeConfig {
                format: PixelFormat::Bgr8,
                min_long_side: None,
            },
            1 << 30,
        )
        .map(|i| i.data)
        .unwrap_or_default();
        assert_eq!(rgb[0..3], [bgr[2], bgr[1], bgr[0]]);
    }

    #[test]
    fn dct_scaling_decodes_smaller_when_the_consumer_needs_less() {
        assert_eq!(dct_scale_numerator(1280, Some(640)), 4);
        assert_eq!(dct_scale_numerator(1280, Some(160)), 1);
        assert_eq!(dct_scale_numerator(1280, Some(641)), 8);
        assert_eq!(dct_scale_numerator(1280, None), 8);
        let cfg = JpegDecodeConfig {
            format: PixelFormat::Rgb8,
            min_long_side: Some(80),
        };
        let img = decode(&sample(320, 240), &cfg, 1 << 30).map(|i| (i.width, i.height));
        assert_eq!(img, Ok((80, 60)));
    }

    #[test]
    fn corrupt_and_truncated_frames_are_errors_not_crashes() {
        let jpeg = sample(64, 48);
        assert!(matches!(
            decode(
                b"\xFF\xD8garbage\xFF\xD9",
                &JpegDecodeConfig::default(),
                1 << 30
            ),
            Err(FrameError::Undecodable(_))
        ));
        assert!(matches!(
            decode(&jpeg[..20], &JpegDecodeConfig::default(), 1 << 30),
            Err(FrameError::Undecodable(_))
        ));
        assert!(decode(&[], &JpegDecodeConfig::default(), 1 << 30).is_err());
    }

    #[test]
    fn declared_dimensions_over_the_pixel_limit_are_refused_before_decoding() {
        let jpeg = sample(64, 48);
        assert_eq!(
            decode(&jpeg, &JpegDecodeConfig::default(), 64 * 48 - 1),
            Err(FrameError::TooManyPixels {
                width: 64,
                height: 48,
                max_pixels: 64 * 48 - 1
            })
        );
    }
}
