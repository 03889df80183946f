//! PaddleOCR's `box_score_fast`: the mean probability over the pixels that `cv2.fillPoly` paints
//! for the box, inside the box's bounding rectangle. The mask is reproduced pixel for pixel:
//! OpenCV paints each edge as an 8-connected Bresenham line (`LineIterator`, drawn left to
//! right, clipped with `clipLine`) and fills each scanline between edge crossings computed in
//! 16.16 fixed point, the bottom row of each edge excluded. Corners are truncated to integers
//! relative to the bounding rectangle first, as PaddleOCR's `astype(np.int32)` does. Matching
//! the mask exactly matters at the `box_thresh` boundary, where a pixel more or less decides
//! whether a box survives.

use crate::geom::Point;

const XY_SHIFT: u32 = 16;
const XY_ONE: i64 = 1 << XY_SHIFT;

/// A `width` x `height` 0/1 mask, row-major.
pub struct Mask<'a> {
    pub data: &'a mut [u8],
    pub width: i64,
    pub height: i64,
}

impl Mask<'_> {
    fn set(&mut self, x: i64, y: i64) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            if let Some(v) = self.data.get_mut((y * self.width + x) as usize) {
                *v = 1;
            }
        }
    }

    fn hline(&mut self, y: i64, x1: i64, x2: i64) {
        let (x1, x2) = (x1.max(0), x2.min(self.width - 1));
        if x1 > x2 || !(0..self.height).contains(&y) {
            return;
        }
        let start = (y * self.width) as usize;
        if let Some(row) = self.data.get_mut(start + x1 as usize..=start + x2 as usize) {
            row.fill(1);
        }
    }
}

/// OpenCV's `clipLine` for a `width` x `height` image; false when the line misses it.
fn clip_line(width: i64, height: i64, p1: &mut [i64; 2], p2: &mut [i64; 2]) -> bool {
    let (right, bottom) = (width - 1, height - 1);
    if width <= 0 || height <= 0 {
        return false;
    }
    let code = |p: &[i64; 2]| {
        i32::from(p[0] < 0)
            + i32::from(p[0] > right) * 2
            + i32::from(p[1] < 0) * 4
            + i32::from(p[1] > bottom) * 8
    };
    let (mut c1, mut c2) = (code(p1), code(p2));
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            p1[0] += ((a - p1[1]) as f64 * (p2[0] - p1[0]) as f64 / (p2[1] - p1[1]) as f64) as i64;
            p1[1] = a;
            c1 = i32::from(p1[0] < 0) + i32::from(p1[0] > right) * 2;
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            p2[0] += ((a - p2[1]) as f64 * (p2[0] - p1[0]) as f64 / (p2[1] - p1[1]) as f64) as i64;
            p2[1] = a;
            c2 = i32::from(p2[0] < 0) + i32::from(p2[0] > right) * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                p1[1] +=
                    ((a - p1[0]) as f64 * (p2[1] - p1[1]) as f64 / (p2[0] - p1[0]) as f64) as i64;
                p1[0] = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                p2[1] +=
                    ((a - p2[0]) as f64 * (p2[1] - p1[1]) as f64 / (p2[0] - p1[0]) as f64) as i64;
                p2[0] = a;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// OpenCV's 8-connected `Line` (a `LineIterator` with `left_to_right`).
fn line(mask: &mut Mask, p1: [i64; 2], p2: [i64; 2]) {
    let (mut p1, mut p2) = (p1, p2);
    let outside =
        |p: &[i64; 2]| !(0..mask.width).contains(&p[0]) || !(0..mask.height).contains(&p[1]);
    if (outside(&p1) || outside(&p2)) && !clip_line(mask.width, mask.height, &mut p1, &mut p2) {
        return;
    }
    // Walk left to right.
    if p2[0] < p1[0] {
        std::mem::swap(&mut p1, &mut p2);
    }
    let dx = p2[0] - p1[0];
    let dy = (p2[1] - p1[1]).abs();
    let ystep = if p2[1] < p1[1] { -1 } else { 1 };
    // Major axis x unless the line is steeper than 45 degrees.
    let steep = dy > dx;
    let (major, minor) = if steep { (dy, dx) } else { (dx, dy) };
    let mut err = major - 2 * minor;
    let (mut x, mut y) = (p1[0], p1[1]);
    for _ in 0..=major {
        mask.set(x, y);
        let diagonal = err < 0;
        err += -2 * minor + if diagonal { 2 * major } else { 0 };
        if steep {
            y += ystep;
            if diagonal {
                x += 1;
            }
        } else {
            x += 1;
            if diagonal {
                y += ystep;
            }
        }
    }
}

struct Edge {
    y0: i64,
    y1: i64,
    x: i64,
    dx: i64,
}

/// `cv2.fillPoly(mask, [pts], 1)` with the default 8-connected lines and no shift.
pub fn fill_poly(mask: &mut Mask, pts: &[[i64; 2]]) {
    let Some(&last) = pts.last() else {
        return;
    };
    let mut edges = Vec::with_capacity(pts.len());
    let mut p0 = last;
    for &p1 in pts {
        line(mask, p0, p1);
        if p0[1] != p1[1] {
            let (x0, x1) = (p0[0] << XY_SHIFT, p1[0] << XY_SHIFT);
            let (top, bottom, x) = if p0[1] < p1[1] {
                (p0[1], p1[1], x0)
            } else {
                (p1[1], p0[1], x1)
            };
            edges.push(Edge {
                y0: top,
                y1: bottom,
                x,
                dx: (x1 - x0) / (p1[1] - p0[1]),
            });
        }
        p0 = p1;
    }
    if edges.len() < 2 {
        return;
    }
    let y_min = edges.iter().map(|e| e.y0).min().unwrap_or(0);
    let y_max = edges.iter().map(|e| e.y1).max().unwrap_or(0);
    let ends = edges.iter().flat_map(|e| [e.x, e.x + (e.y1 - e.y0) * e.dx]);
    let (x_min, x_max) = ends.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if y_max < 0 || y_min >= mask.height || x_max < 0 || x_min >= (mask.width << XY_SHIFT) {
        return;
    }
    let mut xs = Vec::with_capacity(edges.len());
    for y in y_min.max(0)..y_max.min(mask.height) {
        xs.clear();
        xs.extend(
            edges
                .iter()
                .filter(|e| e.y0 <= y && y < e.y1)
                .map(|e| e.x + (y - e.y0) * e.dx),
        );
        xs.sort_unstable();
        for pair in xs.chunks_exact(2) {
            let x1 = (pair[0] + XY_ONE - 1) >> XY_SHIFT;
            let x2 = pair[1] >> XY_SHIFT;
            if x1 < mask.width && x2 >= 0 {
                mask.hline(y, x1, x2);
            }
        }
    }
}

/// Mean of `prob` (a `width` x `height` map) over the pixels `cv2.fillPoly` paints for `quad`,
/// as PaddleOCR's `box_score_fast`; 0 when no pixel is painted. `scratch` is reused between calls.
pub fn box_score_fast(
    prob: &[f32],
    width: usize,
    height: usize,
    quad: &[Point; 4],
    scratch: &mut Vec<u8>,
) -> f64 {
    if width == 0 || height == 0 || prob.len() != width * height {
        return 0.0;
    }
    let (w, h) = (width as i64, height as i64);
    let fold =
        |axis: usize, f: fn(f64, f64) -> f64, init: f64| quad.iter().map(|p| p[axis]).fold(init, f);
    let xmin = (fold(0, f64::min, f64::MAX).floor() as i64).clamp(0, w - 1);
    let xmax = (fold(0, f64::max, f64::MIN).ceil() as i64).clamp(0, w - 1);
    let ymin = (fold(1, f64::min, f64::MAX).floor() as i64).clamp(0, h - 1);
    let ymax = (fold(1, f64::max, f64::MIN).ceil() as i64).clamp(0, h - 1);
    let (mw, mh) = (xmax - xmin + 1, ymax - ymin + 1);
    scratch.clear();
    scratch.resize((mw * mh) as usize, 0);
    let pts = quad.map(|p| [(p[0] - xmin as f64) as i64, (p[1] - ymin as f64) as i64]);
    fill_poly(
        &mut Mask {
            data: scratch,
            width: mw,
            height: mh,
        },
        &pts,
    );
    let (mut sum, mut count) = (0f64, 0usize);
    for (my, mask_row) in scratch.chunks_exact(mw as usize).enumerate() {
        let start = (ymin as usize + my) * width + xmin as usize;
        let Some(prob_row) = prob.get(start..start + mw as usize) else {
            break;
        };
        for (&m, &p) in mask_row.iter().zip(prob_row) {
            if m != 0 {
                sum += f64::from(p);
                count += 1;
            }
        }
    }
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn paint(w: i64, h: i64, pts: &[[i64; 2]]) -> Vec<String> {
        let mut data = vec![0u8; (w * h) as usize];
        fill_poly(
            &mut Mask {
                data: &mut data,
                width: w,
                height: h,
            },
            pts,
        );
        data.chunks(w as usize)
            .map(|r| r.iter().map(|&v| if v == 1 { '#' } else { '.' }).collect())
            .collect()
    }

    #[test]
    fn matches_opencv_fill_poly() {
        // cv2.fillPoly(np.zeros((12, 12), np.uint8), [[[1,2],[9,0],[10,8],[2,11]]], 1), OpenCV 5.0.
        let expected = [
            "........##..",
            "....######..",
            ".#########..",
            ".#########..",
            ".#########..",
            ".##########.",
            ".##########.",
            "..#########.",
            "..#########.",
            "..#######...",
            "..#####.....",
            "..##........",
        ];
        assert_eq!(paint(12, 12, &[[1, 2], [9, 0], [10, 8], [2, 11]]), expected);
    }

    #[test]
    fn rectangles_include_their_border_and_clip() {
        assert_eq!(
            paint(6, 4, &[[1, 1], [4, 1], [4, 2], [1, 2]]),
            ["......", ".####.", ".####.", "......"]
        );
        // Partly outside: clipped, not wrapped.
        assert_eq!(
            paint(4, 3, &[[-2, -1], [2, -1], [2, 1], [-2, 1]]),
            ["###.", "###.", "...."]
        );
        // Entirely outside: nothing.
        assert_eq!(
            paint(3, 3, &[[5, 5], [8, 5], [8, 8], [5, 8]]),
            ["...", "...", "..."]
        );
        assert_eq!(paint(3, 3, &[]), ["...", "...", "..."]);
    }

    #[test]
    fn bresenham_like_opencv() {
        let mut data = vec![0u8; 11 * 2];
        line(
            &mut Mask {
                data: &mut data,
                width: 11,
                height: 2,
            },
            [10, 1],
            [0, 0],
        );
        // err starts at 10 - 2 = 8 and steps by -2: the step down happens after 6 pixels.
        assert_eq!(&data[..11], &[1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(&data[11..], &[0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn box_score_is_the_masked_mean() {
        let (w, h) = (8, 6);
        let mut prob = vec![0f32; w * h];
        for y in 1..4 {
            for x in 2..6 {
                prob[y * w + x] = 1.0;
            }
        }
        let mut scratch = Vec::new();
        let inside = [[2.0, 1.0], [5.0, 1.0], [5.0, 3.0], [2.0, 3.0]];
        assert_eq!(box_score_fast(&prob, w, h, &inside, &mut scratch), 1.0);
        // One column wider: 12 of 15 pixels are ones.
        let wider = [[2.0, 1.0], [6.0, 1.0], [6.0, 3.0], [2.0, 3.0]];
        assert!((box_score_fast(&prob, w, h, &wider, &mut scratch) - 0.8).abs() < 1e-12);
        // Fractional corners: the mask spans floor..ceil (2..=6 x 1..=4) but the corners are
        // truncated relative to it, to (0,0)..(3,2): exactly the ones again.
        let frac = [[2.4, 1.2], [5.6, 1.2], [5.6, 3.9], [2.4, 3.9]];
        assert_eq!(box_score_fast(&prob, w, h, &frac, &mut scratch), 1.0);
        // Outside the map: clamped to the border pixels.
        let outside = [[-5.0, -5.0], [-1.0, -5.0], [-1.0, -1.0], [-5.0, -1.0]];
        assert_eq!(box_score_fast(&prob, w, h, &outside, &mut scratch), 0.0);
        assert_eq!(box_score_fast(&prob, 0, 0, &inside, &mut scratch), 0.0);
    }
}
