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
use std::sync::Arc;

use mozjpeg::decompress::DecompressBuilder;
use mozjpeg::ColorSpace;

use super::jpeg_strict::strict_error_mgr;
use super::row_feed::{FeedHeader, FeedSender, RowFeed, FEED_ROWS};
use serde::Deserialize;

use super::{typed_config, NodeFailure, RunContext};
use crate::frame::FrameError;
use crate::value::{Image, PixelFormat, Value};

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
    guarded(|| {
        let (mut started, header) = start(jpeg, config, max_pixels)?;
        let data = started.read_scanlines::<u8>().map_err(io_err)?;
        finish(started, header, data)
    })
}

/// Decodes like [`decode`] while `consumers` threads read the rows as they
/// are written (see [`row_feed`](super::row_feed)): consumer `k` runs
/// `consume(k, feed)` on a scoped thread started once the header is read.
/// Returns the image and each consumer's result (`None` for one that could not
/// be started or panicked). When decoding fails the consumers see their feed
/// end early, and the error is the one [`decode`] gives.
pub fn decode_feeding<R: Send>(
    jpeg: &[u8],
    config: &JpegDecodeConfig,
    max_pixels: u64,
    consumers: usize,
    consume: impl Fn(usize, RowFeed<'_>) -> R + Sync,
) -> (Result<Image, FrameError>, Vec<Option<R>>) {
    let mut results = Vec::new();
    let image = guarded(|| {
        let (mut started, header) = start(jpeg, config, max_pixels)?;
        let stride = header.stride();
        let mut data = Vec::new();
        data.try_reserve_exact(stride * header.height as usize)
            .map_err(|_| FrameError::Undecodable("out of memory".into()))?;
        data.resize(stride * header.height as usize, 0u8);
        let consume = &consume;
        let read = std::thread::scope(|scope| {
            let mut senders = Vec::with_capacity(consumers);
            let mut handles = Vec::with_capacity(consumers);
            for k in 0..consumers {
                let (tx, rx) = std::sync::mpsc::channel();
                let feed = RowFeed::new(header, rx);
                let handle = std::thread::Builder::new()
                    .name("streamhost-feed".into())
                    .spawn_scoped(scope, move || consume(k, feed));
                if handle.is_ok() {
                    senders.push(tx);
                }
                handles.push(handle.ok());
            }
            let mut feed = FeedSender::new(senders);
            let mut read = Ok(());
            for band in data.chunks_mut(FEED_ROWS * stride.max(1)) {
                if let Err(e) = started.read_scanlines_into(band) {
                    read = Err(io_err(e));
                    break;
                }
                feed.send(band);
            }
            drop(feed);
            results = handles
                .into_iter()
                .map(|h| h.and_then(|h| h.join().ok()))
                .collect();
            read
        });
        read?;
        finish(started, header, data)
    });
    (image, results)
}

fn io_err(e: std::io::Error) -> FrameError {
    FrameError::Undecodable(e.to_string())
}

/// Runs `f` with libjpeg's fatal errors (which unwind out of C) caught.
fn guarded(f: impl FnOnce() -> Result<Image, FrameError>) -> Result<Image, FrameError> {
    match catch_unwind(AssertUnwindSafe(f)) {
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

type Started<'a> = mozjpeg::decompress::DecompressStarted<&'a [u8]>;

/// Reads the header, refuses absurd sizes, and starts decompression at the
/// configured scale and layout.
fn start<'a>(
    jpeg: &'a [u8],
    config: &JpegDecodeConfig,
    max_pixels: u64,
) -> Result<(Started<'a>, FeedHeader), FrameError> {
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
    let started = dec.to_colorspace(color).map_err(io_err)?;
    let side =
        |s: usize| u32::try_from(s).map_err(|_| FrameError::Undecodable("size overflow".into()));
    let header = FeedHeader {
        width: side(started.width())?,
        height: side(started.height())?,
        format: config.format,
    };
    Ok((started, header))
}

fn finish(started: Started<'_>, header: FeedHeader, data: Vec<u8>) -> Result<Image, FrameError> {
    started.finish().map_err(io_err)?;
    let image = Image {
        width: header.width,
        height: header.height,
        format: header.format,
        data,
    };
    if !image.is_consistent() {
        return Err(FrameError::Undecodable("truncated image data".into()));
    }
    Ok(image)
}

/// Test and example helper: encodes an RGB buffer as a baseline JPEG (libjpeg's
/// classic settings, what cameras, browsers, OpenCV and PIL write; mozjpeg's
/// own default is progressive).
pub fn encode_rgb(
    width: usize,
    height: usize,
    rgb: &[u8],
    quality: f32,
) -> Result<Vec<u8>, String> {
    catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut comp = mozjpeg::Compress::new(ColorSpace::JCS_RGB);
        comp.set_fastest_defaults();
        comp.set_size(width, height);
        comp.set_quality(quality);
        let mut started = comp.start_compress(Vec::new())?;
        started.write_scanlines(rgb)?;
        started.finish()
    }))
    .map_err(|_| "encoder error".to_string())?
    .map_err(|e| e.to_string())
}

// The node's part in `nodes::NativeKind` / `NativeNode`: inputs, config, run.

/// A `jpeg_decode` node reads the client's frame and nothing else.
pub(super) fn check_inputs(inputs: usize, from_frame: bool) -> Result<(), String> {
    if !(from_frame && inputs == 1) {
        return Err("jpeg_decode takes exactly one input, the client's frame".into());
    }
    Ok(())
}

pub(super) fn load_config(table: &toml::Table) -> Result<JpegDecodeConfig, String> {
    typed_config(table)
}

/// Decodes the frame; a frame that does not decode is the client's error
/// (`invalid_frame`), not the node's.
pub(super) fn run(
    config: &JpegDecodeConfig,
    inputs: &[(String, Value)],
    ctx: RunContext,
) -> Result<Value, NodeFailure> {
    match inputs.first() {
        Some((_, Value::Jpeg(bytes))) => {
            let image = decode(bytes, config, ctx.max_frame_pixels)?;
            Ok(Value::Image(Arc::new(image)))
        }
        _ => Err(NodeFailure::Node(
            "expects the client's JPEG frame as its input".into(),
        )),
    }
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

    /// A progressive JPEG (mozjpeg's default): libjpeg decodes all its scans
    /// when decompression starts, before the first row is read out.
    fn progressive(w: usize, h: usize) -> Vec<u8> {
        catch_unwind(|| -> std::io::Result<Vec<u8>> {
            let mut comp = mozjpeg::Compress::new(ColorSpace::JCS_RGB);
            comp.set_size(w, h);
            comp.set_quality(90.0);
            let mut started = comp.start_compress(Vec::new())?;
            started.write_scanlines(&gradient(w, h))?;
            started.finish()
        })
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
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

    /// Every row a consumer of [`decode_feeding`] reads, in order, or `None`
    /// if its feed ended first.
    fn read_all(feed: &mut RowFeed<'_>) -> Option<Vec<u8>> {
        let mut rows = Vec::new();
        for y in 0..feed.header().height as usize {
            rows.extend_from_slice(feed.row(y)?);
        }
        Some(rows)
    }

    #[test]
    fn feeding_rows_to_consumers_changes_no_pixel_and_every_row_reaches_each() {
        // 150 rows: four whole bands and a short one.
        for jpeg in [sample(200, 150), progressive(200, 150)] {
            fed_matches_plain(&jpeg);
        }
    }

    fn fed_matches_plain(jpeg: &[u8]) {
        let configs = [
            JpegDecodeConfig::default(),
            JpegDecodeConfig {
                format: PixelFormat::Bgr8,
                min_long_side: None,
            },
            JpegDecodeConfig {
                format: PixelFormat::Rgba8,
                min_long_side: Some(100),
            },
            JpegDecodeConfig {
                format: PixelFormat::Gray8,
                min_long_side: None,
            },
        ];
        for cfg in configs {
            let plain = decode(jpeg, &cfg, 1 << 30).map_err(|e| e.to_string());
            let (fed, seen) =
                decode_feeding(jpeg, &cfg, 1 << 30, 2, |_, mut feed| read_all(&mut feed));
            let fed = fed.map_err(|e| e.to_string());
            let (Ok(plain), Ok(fed)) = (plain, fed) else {
                return assert_eq!(format!("{cfg:?}"), "a decodable sample");
            };
            assert_eq!(
                (fed.width, fed.height, fed.format),
                (plain.width, plain.height, plain.format)
            );
            assert!(fed.data == plain.data, "{cfg:?}: pixels differ");
            assert_eq!(seen.len(), 2);
            for rows in seen {
                assert!(rows.flatten().as_ref() == Some(&plain.data), "{cfg:?}");
            }
        }
    }

    #[test]
    fn a_frame_that_fails_mid_decode_ends_the_feed_and_fails_as_decode_does() {
        let jpeg = sample(200, 150);
        let cfg = JpegDecodeConfig::default();
        // Cut inside the entropy-coded data: the header parses, the rows run out.
        let truncated = &jpeg[..jpeg.len() * 2 / 3];
        let plain = decode(truncated, &cfg, 1 << 30).map(|_| ());
        assert!(
            matches!(plain, Err(FrameError::Undecodable(_))),
            "{plain:?}"
        );
        // The consumer records how far it got: the decoder's unwinding drops
        // its results along with the frame.
        let outcome = std::sync::Mutex::new(None);
        let (fed, _) = decode_feeding(truncated, &cfg, 1 << 30, 1, |_, mut feed| {
            let mut rows = 0;
            while feed.row(rows).is_some() {
                rows += 1;
            }
            if let Ok(mut o) = outcome.lock() {
                *o = Some((rows, feed.header().height as usize));
            }
        });
        assert_eq!(fed.map(|_| ()), plain);
        // The consumer started (the header was fine), read some rows, and saw its feed end.
        let outcome = outcome.lock().map(|o| *o).unwrap_or_default();
        assert!(
            matches!(outcome, Some((rows, 150)) if rows > 0 && rows < 150),
            "{outcome:?}"
        );
        // Refused at the header: no consumer is started at all.
        for (frame, limit) in [(&b"\xFF\xD8garbage\xFF\xD9"[..], 1 << 30), (&jpeg[..], 10)] {
            let (fed, seen) =
                decode_feeding(frame, &cfg, limit, 1, |_, mut feed| read_all(&mut feed));
            assert_eq!(fed.map(|_| ()), decode(frame, &cfg, limit).map(|_| ()));
            assert!(seen.is_empty());
        }
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
