//! Frame validation: the O(1) checks every binary message passes before any
//! other work is done on it.
//!
//! Only the length and the four marker bytes are inspected, so validation is
//! cheap enough to run before the backpressure decision, as in the seed's
//! request flow (validate, then admit or drop). Decoding, with its own failure
//! modes, lives in `nodes::jpeg_decode`; its errors share [`FrameError`] so a
//! corrupt JPEG is reported as `invalid_frame` however deep it is found.

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("Frame exceeds {limit}")]
    TooLarge { limit: String },
    #[error("Not a valid JPEG image")]
    NotJpeg,
    #[error("Not a valid JPEG image: {0}")]
    Undecodable(String),
    #[error("Not a valid JPEG image: declared size {width}x{height} exceeds the {max_pixels} pixel limit")]
    TooManyPixels {
        width: usize,
        height: usize,
        max_pixels: u64,
    },
}

const SOI: [u8; 2] = [0xFF, 0xD8];
const EOI: [u8; 2] = [0xFF, 0xD9];

/// Checks size first (so an oversized non-JPEG is `frame_too_large`), then the
/// JPEG start-of-image and end-of-image markers.
pub fn validate_jpeg(frame: &[u8], max_bytes: usize, limit_label: &str) -> Result<(), FrameError> {
    if frame.len() > max_bytes {
        return Err(FrameError::TooLarge {
            limit: limit_label.to_string(),
        });
    }
    if frame.len() < 4 || !frame.starts_with(&SOI) || !frame.ends_with(&EOI) {
        return Err(FrameError::NotJpeg);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB5: usize = 5 << 20;

    #[test]
    fn a_jpeg_shaped_frame_passes() {
        assert_eq!(validate_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9], MB5, "5MB"), Ok(()));
    }

    #[test]
    fn wrong_markers_are_invalid_frame() {
        for bad in [
            &b"not-a-jpeg"[..],
            &[0xFF, 0xD8],
            &[0xFF, 0xD8, 0xFF],
            &[],
            &[0xFF, 0xD9, 0xFF, 0xD8],
            &[0xFF, 0xD8, 0, 0, 0xFF, 0xD8],
        ] {
            assert_eq!(
                validate_jpeg(bad, MB5, "5MB"),
                Err(FrameError::NotJpeg),
                "{bad:?}"
            );
        }
        assert_eq!(FrameError::NotJpeg.to_string(), "Not a valid JPEG image");
    }

    #[test]
    fn oversized_frames_are_too_large_even_when_not_jpeg() {
        let mut big = vec![b'0'; MB5 + 1];
        assert_eq!(
            validate_jpeg(&big, MB5, "5MB"),
            Err(FrameError::TooLarge {
                limit: "5MB".into()
            })
        );
        big[0] = 0xFF;
        big[1] = 0xD8;
        let n = big.len();
        big[n - 2] = 0xFF;
        big[n - 1] = 0xD9;
        let err = validate_jpeg(&big, MB5, "5MB").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("Frame exceeds 5MB"));
        // Exactly at the limit is accepted.
        assert_eq!(
            validate_jpeg(
                &big[..MB5 - 2]
                    .iter()
                    .chain(&EOI)
                    .copied()
                    .collect::<Vec<_>>(),
                MB5,
                "5MB"
            ),
            Ok(())
        );
    }
}
