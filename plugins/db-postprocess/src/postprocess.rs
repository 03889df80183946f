//! The DB post-processing pipeline of RapidOCR 3.10 (`DBPostProcess` + `filter_det_res` +
//! `sorted_boxes`), as one plain function over a probability map: no WIT types, so it is tested
//! on the host. Each step names the Python it stands for.

use crate::contours::{binarize, candidates};
use crate::geom::{
    convex_hull, min_area_rect, mini_box, opencv_hull_order, order_clockwise, HullStart,
};
use crate::score::box_score_fast;
use crate::unclip::{area_and_perimeter, offset_round};

/// Boxes whose top-left y differ by less than this many frame pixels are one line
/// (RapidOCR's `_BOX_SORT_Y_THRESHOLD`).
const LINE_Y_THRESHOLD: i64 = 10;

/// Tunables, with RapidOCR's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Binarisation threshold on the probability map.
    pub thresh: f32,
    /// Minimum mean probability inside a box.
    pub box_thresh: f64,
    /// Expansion: distance = area * unclip_ratio / perimeter.
    pub unclip_ratio: f64,
    /// At most this many contours are examined (in OpenCV's order).
    pub max_candidates: usize,
    /// Boxes with a shorter side are dropped (`min_size + 2` after unclipping).
    pub min_size: f64,
    /// Dilate the bitmap with a 2x2 kernel first.
    pub use_dilation: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            thresh: 0.3,
            box_thresh: 0.5,
            unclip_ratio: 1.6,
            max_candidates: 1000,
            min_size: 3.0,
            use_dilation: true,
        }
    }
}

/// The pre-processing node's `meta`: model = frame * scale + pad, per axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Meta {
    pub src_w: f64,
    pub src_h: f64,
    pub scale_x: f64,
    pub scale_y: f64,
    pub pad_x: f64,
    pub pad_y: f64,
}

impl Meta {
    /// Identity mapping for a `w` x `h` frame fed to the model unscaled.
    pub fn identity(w: f64, h: f64) -> Self {
        Meta {
            src_w: w,
            src_h: h,
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
        }
    }
}

/// A detected text region in frame pixels: top-left, top-right, bottom-right, bottom-left.
#[derive(Clone, Debug, PartialEq)]
pub struct TextBox {
    pub points: [[i64; 2]; 4],
    pub score: f64,
}

/// DB post-processing of a `width` x `height` probability map (`prob.len() == width * height`,
/// else no boxes), boxes in reading order.
pub fn db_postprocess(
    prob: &[f32],
    width: usize,
    height: usize,
    meta: &Meta,
    params: &Params,
) -> Vec<TextBox> {
    if width == 0 || height == 0 || prob.len() != width * height {
        return Vec::new();
    }
    let bitmap = binarize(prob, width, height, params.thresh, params.use_dilation);
    let contours = candidates(&bitmap, width, height, params.max_candidates);
    let mut scratch = Vec::new();
    let mut hull_input = Vec::new();
    let mut boxes = Vec::new();
    for i in 0..contours.len() {
        // get_mini_boxes(contour)
        hull_input.clear();
        hull_input.extend(
            contours
                .points(i)
                .iter()
                .map(|p| [i64::from(p[0]), i64::from(p[1])]),
        );
        let mut hull = convex_hull(&hull_input);
        opencv_hull_order(&mut hull, contours.hull_start(i));
        let rect = min_area_rect(&hull);
        if rect.min_side() < params.min_size {
            continue;
        }
        let quad = mini_box(&rect);
        // box_score_fast
        let score = box_score_fast(prob, width, height, &quad, &mut scratch);
        if params.box_thresh > score {
            continue;
        }
        // unclip, then get_mini_boxes again
        let (area, perimeter) = area_and_perimeter(&quad);
        let distance = area * params.unclip_ratio / perimeter;
        let grown = offset_round(&quad, distance);
        // (OpenCV would start this hull where Clipper's output starts; that only moves the f32
        // noise of corners that are rounded, not truncated, next.)
        let mut hull = convex_hull(&grown);
        opencv_hull_order(&mut hull, HullStart::EndAtTopLeft);
        let rect = min_area_rect(&hull);
        if rect.min_side() < params.min_size + 2.0 {
            continue;
        }
        // Back to the frame (np.clip(np.round(...), 0, dest)), then filter_det_res.
        let mapped = mini_box(&rect).map(|p| {
            [
                to_frame(p[0], meta.pad_x, meta.scale_x, meta.src_w),
                to_frame(p[1], meta.pad_y, meta.scale_y, meta.src_h),
            ]
        });
        let (max_x, max_y) = (
            (meta.src_w as i64 - 1).max(0),
            (meta.src_h as i64 - 1).max(0),
        );
        let points = order_clockwise(mapped).map(|p| [p[0].clamp(0, max_x), p[1].clamp(0, max_y)]);
        let side =
            |a: [i64; 2], b: [i64; 2]| ((a[0] - b[0]) as f64).hypot((a[1] - b[1]) as f64).trunc();
        if side(points[0], points[1]) <= params.min_size
            || side(points[0], points[3]) <= params.min_size
        {
            continue;
        }
        boxes.push(TextBox { points, score });
    }
    sort_reading_order(&mut boxes);
    boxes
}

/// Model coordinate `v` to a frame pixel, the way RapidOCR computes `np.round(v / width *
/// dest_width)`: in f32 (the box is float32 and numpy keeps it so), rounding half to even, then
/// clipped to `0..=size`. `width` is the extent of the frame's content in the model input,
/// `scale * size`, snapped to the integer it is meant to be; the pad is subtracted first.
/// Where the value lands on .5, f32 rounding of the division decides, so this matters.
fn to_frame(v: f64, pad: f64, scale: f64, size: f64) -> i64 {
    let content = scale * size;
    let snapped = content.round();
    let content = if (content - snapped).abs() < 1e-3 {
        snapped
    } else {
        content
    };
    let x = ((v - pad) as f32 / content as f32) * size as f32;
    f64::from(x.round_ties_even()).clamp(0.0, size) as i64
}

/// RapidOCR's `sorted_boxes`: stable sort by the top-left y; a new line starts where it jumps by
/// `LINE_Y_THRESHOLD` or more from the previous box's; within a line, stable sort by x.
pub fn sort_reading_order(boxes: &mut [TextBox]) {
    boxes.sort_by_key(|b| b.points[0][1]);
    let mut line = 0usize;
    let mut keys = Vec::with_capacity(boxes.len());
    let mut prev_y = None;
    for b in boxes.iter() {
        let y = b.points[0][1];
        if prev_y.is_some_and(|p| y - p >= LINE_Y_THRESHOLD) {
            line += 1;
        }
        prev_y = Some(y);
        keys.push((line, b.points[0][0]));
    }
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by_key(|&i| keys[i]);
    let sorted: Vec<TextBox> = order.iter().map(|&i| boxes[i].clone()).collect();
    for (slot, b) in boxes.iter_mut().zip(sorted) {
        *slot = b;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A `w` x `h` map with `value` inside each (x0, y0, x1, y1) rectangle (inclusive).
    fn map(w: usize, h: usize, rects: &[(usize, usize, usize, usize, f32)]) -> Vec<f32> {
        let mut m = vec![0.0; w * h];
        for &(x0, y0, x1, y1, v) in rects {
            for y in y0..=y1 {
                for x in x0..=x1 {
                    m[y * w + x] = v;
                }
            }
        }
        m
    }

    fn tb(points: [[i64; 2]; 4]) -> TextBox {
        TextBox { points, score: 1.0 }
    }

    // Expected boxes below come from RapidOCR 3.10's DBPostProcess (OpenCV 4.14, pyclipper
    // 1.3) run on the same maps.

    #[test]
    fn one_rectangle() {
        // Pixels 10..=49 x 20..=29; dilation grows it to 10..=50 x 20..=30 (centres span 40x10).
        let prob = map(64, 48, &[(10, 20, 49, 29, 0.9)]);
        let boxes = db_postprocess(
            &prob,
            64,
            48,
            &Meta::identity(64.0, 48.0),
            &Params::default(),
        );
        assert_eq!(boxes.len(), 1);
        let b = &boxes[0];
        // The mask over 10..=50 x 20..=30 is 41x11 pixels, of which 40x10 are 0.9.
        assert!((b.score - 0.9 * 400.0 / 451.0).abs() < 1e-6, "{}", b.score);
        // distance = 400 * 1.6 / 100 = 6.4.
        assert_eq!(b.points, [[4, 14], [56, 14], [56, 36], [4, 36]]);
    }

    #[test]
    fn scaled_and_padded_back_to_the_frame() {
        let prob = map(64, 48, &[(10, 20, 49, 29, 0.9)]);
        // The model saw the frame at half size.
        let mut meta = Meta {
            src_w: 128.0,
            src_h: 96.0,
            scale_x: 0.5,
            scale_y: 0.5,
            pad_x: 0.0,
            pad_y: 0.0,
        };
        let boxes = db_postprocess(&prob, 64, 48, &meta, &Params::default());
        assert_eq!(boxes[0].points, [[8, 28], [112, 28], [112, 72], [8, 72]]);
        // ... placed at (2, 4) in the model input: frame = (model - pad) / scale.
        (meta.pad_x, meta.pad_y) = (2.0, 4.0);
        let boxes = db_postprocess(&prob, 64, 48, &meta, &Params::default());
        assert_eq!(boxes[0].points, [[4, 20], [108, 20], [108, 64], [4, 64]]);
        // Clipped to the frame (0..=w-1, 0..=h-1), as RapidOCR's filter_det_res does.
        let small = Meta::identity(50.0, 30.0);
        let boxes = db_postprocess(&prob, 64, 48, &small, &Params::default());
        assert_eq!(boxes[0].points, [[4, 14], [49, 14], [49, 29], [4, 29]]);
    }

    #[test]
    fn filters() {
        let prob = map(
            80,
            60,
            &[
                (5, 5, 40, 14, 0.45), // below box_thresh
                (5, 30, 6, 50, 0.9),  // two pixels wide: dilated, centres span 2 < min_size
                (50, 30, 70, 40, 0.9),
            ],
        );
        let meta = Meta::identity(80.0, 60.0);
        let expected = [[44, 24], [77, 24], [77, 47], [44, 47]];
        let boxes = db_postprocess(&prob, 80, 60, &meta, &Params::default());
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].points, expected);
        assert!((boxes[0].score - 0.7875).abs() < 1e-6, "{}", boxes[0].score);
        let lenient = Params {
            box_thresh: 0.3,
            ..Params::default()
        };
        let boxes = db_postprocess(&prob, 80, 60, &meta, &lenient);
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].points, [[0, 0], [47, 0], [47, 21], [0, 21]]);
        // Without dilation the strip is one pixel wide in centres: it passes min_size 1 and,
        // unclipped to 3 x 22, min_size + 2. (RapidOCR would still drop it: its last filter is
        // a fixed `<= 3`, where this node uses min_size.)
        let no_dilation = Params {
            use_dilation: false,
            min_size: 1.0,
            ..Params::default()
        };
        let boxes = db_postprocess(&prob, 80, 60, &meta, &no_dilation);
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].points, [[4, 29], [7, 29], [7, 51], [4, 51]]);
        assert_eq!(boxes[1].points, [[45, 25], [75, 25], [75, 45], [45, 45]]);
        // The last contour found (the bottom-right block) is examined first.
        let capped = Params {
            max_candidates: 1,
            ..Params::default()
        };
        let boxes = db_postprocess(&prob, 80, 60, &meta, &capped);
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].points, expected);
        assert!(db_postprocess(&prob, 80, 61, &meta, &Params::default()).is_empty());
        assert!(db_postprocess(&[], 0, 0, &meta, &Params::default()).is_empty());
        assert!(db_postprocess(&[0.0; 100], 10, 10, &meta, &Params::default()).is_empty());
    }

    /// Decodes `testdata/frame_prob.rle`: width, height, crop x, crop y (u32 LE), then repeated
    /// (zero count u32, literal count u32, literal bytes); values are k/255.
    fn fixture() -> (Vec<f32>, usize, usize, [i64; 2]) {
        let bytes: &[u8] = include_bytes!("../testdata/frame_prob.rle");
        let u = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let (w, h, x0, y0) = (u(0), u(4), u(8), u(12));
        let mut prob = Vec::with_capacity(w * h);
        let mut i = 16;
        while i < bytes.len() {
            let (zeros, count) = (u(i), u(i + 4));
            prob.extend(std::iter::repeat_n(0.0, zeros));
            prob.extend(
                bytes[i + 8..i + 8 + count]
                    .iter()
                    .map(|&b| f32::from(b) / 255.0),
            );
            i += 8 + count;
        }
        assert_eq!(prob.len(), w * h);
        (prob, w, h, [x0 as i64, y0 as i64])
    }

    #[test]
    fn real_detector_output_matches_rapidocr() {
        // The PP-OCRv6 detector's map of examples/frames/frame.jpg (640x480, fed unscaled), cut to
        // the region holding every non-zero value; the cut is a pad of minus its origin.
        let (prob, w, h, [x0, y0]) = fixture();
        let meta = Meta {
            src_w: 640.0,
            src_h: 480.0,
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: -x0 as f64,
            pad_y: -y0 as f64,
        };
        let boxes = db_postprocess(&prob, w, h, &meta, &Params::default());
        let expected: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/frame_expected.json")).unwrap();
        let expected = expected["boxes"].as_array().unwrap();
        assert_eq!(boxes.len(), expected.len());
        for (got, want) in boxes.iter().zip(expected) {
            let points: [[i64; 2]; 4] = serde_json::from_value(want["points"].clone()).unwrap();
            assert_eq!(got.points, points);
            let score = want["score"].as_f64().unwrap();
            assert!((got.score - score).abs() < 1e-9, "{} vs {score}", got.score);
        }
    }

    #[test]
    fn reading_order() {
        let mut boxes = vec![
            tb([[50, 105], [90, 105], [90, 120], [50, 120]]),
            tb([[10, 100], [40, 100], [40, 120], [10, 120]]),
            tb([[10, 10], [40, 10], [40, 20], [10, 20]]),
            tb([[60, 14], [90, 14], [90, 24], [60, 24]]),
            tb([[0, 30], [9, 30], [9, 40], [0, 40]]),
        ];
        sort_reading_order(&mut boxes);
        let tops: Vec<[i64; 2]> = boxes.iter().map(|b| b.points[0]).collect();
        // 10 and 14 differ by < 10: one line, left to right; 30 starts a line; 100 and 105 too.
        assert_eq!(
            tops,
            vec![[10, 10], [60, 14], [0, 30], [10, 100], [50, 105]]
        );
        // Chained: 0, 9, 18 are one line although 0 and 18 differ by 18.
        let mut chain = vec![
            tb([[30, 0], [0, 0], [0, 0], [0, 0]]),
            tb([[20, 9], [0, 0], [0, 0], [0, 0]]),
            tb([[10, 18], [0, 0], [0, 0], [0, 0]]),
        ];
        sort_reading_order(&mut chain);
        let xs: Vec<i64> = chain.iter().map(|b| b.points[0][0]).collect();
        assert_eq!(xs, vec![10, 20, 30]);
    }
}
