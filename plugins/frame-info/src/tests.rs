//! frame-info's unit tests, run natively through the SDK's `Session` exactly as the exports run
//! the node.
#![allow(clippy::unwrap_used)]

use super::FrameInfo;
use streamhost_node::{Error, Frame, Image, Input, PixelFormat, Session, Value};

fn info(width: u32, height: u32, format: PixelFormat, data: Vec<u8>) -> serde_json::Value {
    let mut session = Session::<FrameInfo>::start("{}").unwrap();
    let image = Image {
        width,
        height,
        format,
        data,
    };
    let reply = session
        .process(
            &Frame::default(),
            vec![Input::new("decode", Value::Image(image))],
        )
        .unwrap();
    let Value::Json(text) = reply else {
        unreachable!("{reply:?}")
    };
    serde_json::from_str(&text).unwrap()
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
    let rgb = info(w, h, PixelFormat::Rgb8, data.clone());
    assert_eq!(
        rgb,
        serde_json::json!({"width": 37, "height": 5, "format": "rgb8", "bytes_per_pixel": 3,
            "mean_brightness": (expected * 100.0).round() / 100.0})
    );
    // The same bytes read as BGR swap the red and blue weights.
    let bgr = info(w, h, PixelFormat::Bgr8, data);
    assert_ne!(bgr["mean_brightness"], rgb["mean_brightness"]);
}

#[test]
fn formats() {
    let gray = info(3, 1, PixelFormat::Gray8, vec![0, 100, 200]);
    assert_eq!(gray["mean_brightness"], 100.0);
    let rgba = info(1, 1, PixelFormat::Rgba8, vec![255, 255, 255, 0]);
    assert_eq!(rgba["mean_brightness"], 255.0);
    assert_eq!(rgba["bytes_per_pixel"], 4);
    let red = info(1, 1, PixelFormat::Rgb8, vec![255, 0, 0]);
    assert_eq!(red["mean_brightness"], 76.25);
}

#[test]
fn bad_input_or_config_is_an_error_not_a_panic() {
    let mut session = Session::<FrameInfo>::start("").unwrap();
    let short = Image {
        width: 2,
        height: 2,
        format: PixelFormat::Rgb8,
        data: vec![0; 11],
    };
    for inputs in [
        vec![Input::new("decode", Value::Image(short))],
        vec![Input::new("x", Value::Json("{}".into()))],
    ] {
        let got = session.process(&Frame::default(), inputs);
        assert!(matches!(got, Err(Error::InvalidInput(_))), "{got:?}");
    }
    for bad in ["[]", "{\"x\":1}"] {
        assert!(matches!(
            Session::<FrameInfo>::start(bad),
            Err(Error::InvalidConfig(_))
        ));
    }
}
