//! The DB post-processing pipeline of RapidOCR 3.10 (`DBPostProcess` + `filter_det_res` +
//! `sorted_boxes`), as one plain function over a probability map: no WIT types, so it is tested
//! on the host. Each step names the Python it stands for.

use crate::contours::{binarize, candidates};
use crate::geom::{convex_hull, min_area_rect, mini_box, order_clockwise};
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
        let rect = min_area_rect(&convex_hull(&hull_input));
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
        let rect = min_area_rect(&convex_hull(&grown));
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
        // Mask over 10..=50 x 20..=30 is 41x11 pixels, of which 40x10 are 0.9.
        assert!((b.score - 0.9 * 400.0 / 451.0).abs() < 1e-6, "{}", b.score);
        // distance = 400 * 1.6 / 100 = 6.4: 40x10 grows to about 52.8x22.8.
        let [tl, tr, br, bl] = b.points;
        assert_eq!(tl, [4, 14]);
        assert_eq!(tr, [57, 14]);
        assert_eq!(br, [57, 37]);
        assert_eq!(bl, [4, 37]);
    }

    #[test]
    fn scaled_and_padded_back_to_the_frame() {
        let prob = map(64, 48, &[(10, 20, 49, 29, 0.9)]);
        // The model saw the frame at half size, shifted by (2, 4).
        let meta = Meta {
            src_w: 128.0,
            src_h: 96.0,
            scale_x: 0.5,
            scale_y: 0.5,
            pad_x: 2.0,
            pad_y: 4.0,
        };
        let boxes = db_postprocess(&prob, 64, 48, &meta, &Params::default());
        assert_eq!(boxes[0].points, [[4, 20], [110, 20], [110, 66], [4, 66]]);
        // Clipped to the frame.
        let small = Meta::identity(30.0, 30.0);
        let boxes = db_postprocess(&prob, 64, 48, &small, &Params::default());
        assert_eq!(boxes[0].points, [[4, 14], [29, 14], [29, 29], [4, 29]]);
    }

    #[test]
    fn filters() {
        let prob = map(
            80,
            60,
            &[
                (5, 5, 40, 14, 0.45), // below box_thresh
                (5, 30, 6, 50, 0.9),  // two pixels wide: min side 2 < 3
                (50, 30, 70, 40, 0.9),
            ],
        );
        let meta = Meta::identity(80.0, 60.0);
        let boxes = db_postprocess(&prob, 80, 60, &meta, &Params::default());
        assert_eq!(boxes.len(), 1);
        assert!(boxes[0].points[0][0] < 50 && boxes[0].points[2][0] > 70);
        let lenient = Params {
            box_thresh: 0.3,
            ..Params::default()
        };
        assert_eq!(db_postprocess(&prob, 80, 60, &meta, &lenient).len(), 2);
        let no_dilation = Params {
            use_dilation: false,
            min_size: 1.0,
            ..Params::default()
        };
        assert_eq!(db_postprocess(&prob, 80, 60, &meta, &no_dilation).len(), 2);
        let capped = Params {
            max_candidates: 1,
            ..Params::default()
        };
        // The last contour found (the bottom-right block) is examined first.
        assert_eq!(db_postprocess(&prob, 80, 60, &meta, &capped).len(), 1);
        assert!(db_postprocess(&prob, 80, 61, &meta, &Params::default()).is_empty());
        assert!(db_postprocess(&[], 0, 0, &meta, &Params::default()).is_empty());
        assert!(db_postprocess(&vec![0.0; 100], 10, 10, &meta, &Params::default()).is_empty());
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
