//! Plane geometry of DB post-processing: the convex hull (Andrew's monotone chain, put in the
//! order OpenCV's `convexHull` lists it), the minimum-area enclosing rectangle as OpenCV's
//! `minAreaRect` computes it (rotating calipers in f32, so its corners carry the same rounding
//! noise: PaddleOCR truncates them to integers twice, where 338.99997 and 339 part ways), and
//! PaddleOCR's two ways of ordering four corners (`get_mini_boxes`, `order_points_clockwise`).
//! Points are pixel centres, as in OpenCV contours.

pub type Point = [f64; 2];

fn cross(o: [i64; 2], a: [i64; 2], b: [i64; 2]) -> i64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// The convex hull of integer points, without collinear or repeated points, as a closed
/// polygon (first point not repeated). Fewer than three points for degenerate input.
pub fn convex_hull(points: &[[i64; 2]]) -> Vec<[i64; 2]> {
    let mut p = points.to_vec();
    p.sort_unstable();
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut hull: Vec<[i64; 2]> = Vec::with_capacity(p.len() + 1);
    let turns_left = |hull: &[[i64; 2]], q: [i64; 2]| match hull {
        [.., a, b] => cross(*a, *b, q) > 0,
        _ => true,
    };
    for &q in &p {
        while hull.len() >= 2 && !turns_left(&hull, q) {
            hull.pop();
        }
        hull.push(q);
    }
    let lower = hull.len() + 1;
    for &q in p.iter().rev().skip(1) {
        while hull.len() >= lower && !turns_left(&hull, q) {
            hull.pop();
        }
        hull.push(q);
    }
    hull.pop(); // the first point again
    hull
}

/// Where OpenCV's `convexHull` (clockwise, applied to a `findContours` contour) starts the
/// hull: it lists the hull vertices in the order the contour visits them. That matters because
/// `minAreaRect` walks the hull from its first vertex in f32, and both its tie-breaks and its
/// rounding noise (a corner at 338.99997 rather than 339, truncated later) follow that walk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HullStart {
    /// An outer border starts at the component's topmost-leftmost pixel and runs against the
    /// hull's direction, so the hull ends at that pixel.
    EndAtTopLeft,
    /// A hole border starts at this pixel, just left of the hole's first pixel, and runs with
    /// the hull's direction: the hull starts at the first vertex it meets.
    HoleFrom([i64; 2]),
}

/// Rotates a hull from `convex_hull` into the order OpenCV's `convexHull` lists it, which is
/// where `minAreaRect` starts its walk.
pub fn opencv_hull_order(hull: &mut [[i64; 2]], start: HullStart) {
    if hull.len() < 2 {
        return;
    }
    let first = match start {
        HullStart::EndAtTopLeft => {
            let last = (0..hull.len())
                .min_by_key(|&i| (hull[i][1], hull[i][0]))
                .unwrap_or(0);
            (last + 1) % hull.len()
        }
        HullStart::HoleFrom(s) => {
            // Angles about the hole's first pixel (just right of `s`), measured from `s` in the
            // hull's turning direction (from +x towards +y).
            let c = [s[0] as f64 + 1.0, s[1] as f64];
            let offset = |p: &[i64; 2]| {
                let a = (p[1] as f64 - c[1]).atan2(p[0] as f64 - c[0]) - std::f64::consts::PI;
                a.rem_euclid(2.0 * std::f64::consts::PI)
            };
            (0..hull.len())
                .min_by(|&i, &j| offset(&hull[i]).total_cmp(&offset(&hull[j])))
                .unwrap_or(0)
        }
    };
    hull.rotate_left(first);
}

/// A rotated rectangle as `cv2.minAreaRect` + `cv2.boxPoints` give it: the corners in
/// `boxPoints` order and the sizes, all f32 values (held as f64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub corners: [Point; 4],
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn min_side(&self) -> f64 {
        self.width.min(self.height)
    }
}

/// OpenCV's `rotatingCalipers` in `CALIPERS_MINAREARECT` mode, in f32 as OpenCV computes it:
/// returns (corner, side vector 1, side vector 2). `pts` is a convex polygon of three or more
/// vertices without collinear ones.
fn rotating_calipers(pts: &[[f32; 2]]) -> [[f32; 2]; 3] {
    let n = pts.len();
    let mut vect = vec![[0f32; 2]; n];
    let mut inv_len = vec![0f32; n];
    let (mut left, mut bottom, mut right, mut top) = (0, 0, 0, 0);
    let mut pt0 = pts[0];
    let (mut left_x, mut right_x, mut top_y, mut bottom_y) = (pt0[0], pt0[0], pt0[1], pt0[1]);
    for i in 0..n {
        if pt0[0] < left_x {
            left_x = pt0[0];
            left = i;
        }
        if pt0[0] > right_x {
            right_x = pt0[0];
            right = i;
        }
        if pt0[1] > top_y {
            top_y = pt0[1];
            top = i;
        }
        if pt0[1] < bottom_y {
            bottom_y = pt0[1];
            bottom = i;
        }
        let pt = pts[(i + 1) % n];
        let dx = f64::from(pt[0] - pt0[0]);
        let dy = f64::from(pt[1] - pt0[1]);
        vect[i] = [dx as f32, dy as f32];
        inv_len[i] = (1.0 / (dx * dx + dy * dy).sqrt()) as f32;
        pt0 = pt;
    }
    let mut orientation = 0f32;
    let (mut ax, mut ay) = (f64::from(vect[n - 1][0]), f64::from(vect[n - 1][1]));
    for v in &vect {
        let (bx, by) = (f64::from(v[0]), f64::from(v[1]));
        let convexity = ax * by - ay * bx;
        if convexity != 0.0 {
            orientation = if convexity > 0.0 { 1.0 } else { -1.0 };
            break;
        }
        (ax, ay) = (bx, by);
    }
    let (mut base_a, mut base_b) = (orientation, 0f32);
    let mut seq = [bottom, right, top, left];
    let mut best = (f32::MAX, 0usize, 0f32, 0f32, 0f32, 0f32, 0usize); // area, left, a, width, b, height, bottom
    for _ in 0..n {
        let dp = [
            base_a * vect[seq[0]][0] + base_b * vect[seq[0]][1],
            -base_b * vect[seq[1]][0] + base_a * vect[seq[1]][1],
            -base_a * vect[seq[2]][0] - base_b * vect[seq[2]][1],
            base_b * vect[seq[3]][0] - base_a * vect[seq[3]][1],
        ];
        let mut main = 0;
        let mut max_cos = dp[0] * inv_len[seq[0]];
        for e in 1..4 {
            let cos = dp[e] * inv_len[seq[e]];
            if cos > max_cos {
                main = e;
                max_cos = cos;
            }
        }
        let p = seq[main];
        let (lead_x, lead_y) = (vect[p][0] * inv_len[p], vect[p][1] * inv_len[p]);
        (base_a, base_b) = match main {
            0 => (lead_x, lead_y),
            1 => (lead_y, -lead_x),
            2 => (-lead_x, -lead_y),
            _ => (-lead_y, lead_x),
        };
        seq[main] = (seq[main] + 1) % n;
        let (dx, dy) = (
            pts[seq[1]][0] - pts[seq[3]][0],
            pts[seq[1]][1] - pts[seq[3]][1],
        );
        let width = dx * base_a + dy * base_b;
        let (dx, dy) = (
            pts[seq[2]][0] - pts[seq[0]][0],
            pts[seq[2]][1] - pts[seq[0]][1],
        );
        let height = -dx * base_b + dy * base_a;
        let area = width * height;
        if area <= best.0 {
            best = (area, seq[3], base_a, width, base_b, height, seq[0]);
        }
    }
    let (_, l, a1, width, b1, height, b) = best;
    let (a2, b2) = (-b1, a1);
    let c1 = a1 * pts[l][0] + pts[l][1] * b1;
    let c2 = a2 * pts[b][0] + pts[b][1] * b2;
    let idet = 1.0 / (a1 * b2 - a2 * b1);
    let px = (c1 * b2 - c2 * b1) * idet;
    let py = (a1 * c2 - a2 * c1) * idet;
    [
        [px, py],
        [a1 * width, b1 * width],
        [a2 * height, b2 * height],
    ]
}

/// `cv2.boxPoints` of a `RotatedRect` (centre, size, angle in degrees), in f32.
fn box_points(center: [f32; 2], size: [f32; 2], angle: f32) -> [Point; 4] {
    let rad = f64::from(angle) * std::f64::consts::PI / 180.0;
    let b = rad.cos() as f32 * 0.5;
    let a = rad.sin() as f32 * 0.5;
    let [cx, cy] = center;
    let [w, h] = size;
    let p0 = [cx - a * h - b * w, cy + b * h - a * w];
    let p1 = [cx + a * h - b * w, cy - b * h - a * w];
    let p2 = [2.0 * cx - p0[0], 2.0 * cy - p0[1]];
    let p3 = [2.0 * cx - p1[0], 2.0 * cy - p1[1]];
    [p0, p1, p2, p3].map(|p| [f64::from(p[0]), f64::from(p[1])])
}

/// `cv2.minAreaRect` of a hull in OpenCV's order (see `opencv_hull_order`), then
/// `cv2.boxPoints`. One or two points give a rectangle of zero height, like OpenCV.
pub fn min_area_rect(hull: &[[i64; 2]]) -> Rect {
    let pts: Vec<[f32; 2]> = hull.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
    let (center, size, angle) = match pts.as_slice() {
        [] => ([0.0; 2], [0.0; 2], 0.0),
        [p] => (*p, [0.0; 2], 0.0),
        [p, q] => {
            let (dx, dy) = (f64::from(q[0] - p[0]), f64::from(q[1] - p[1]));
            let center = [(p[0] + q[0]) * 0.5, (p[1] + q[1]) * 0.5];
            let angle = dy.atan2(dx) as f32;
            (center, [(dx * dx + dy * dy).sqrt() as f32, 0.0], angle)
        }
        _ => {
            let [o, v1, v2] = rotating_calipers(&pts);
            let center = [o[0] + (v1[0] + v2[0]) * 0.5, o[1] + (v1[1] + v2[1]) * 0.5];
            let len = |v: [f32; 2]| {
                (f64::from(v[0]) * f64::from(v[0]) + f64::from(v[1]) * f64::from(v[1])).sqrt()
                    as f32
            };
            let angle = f64::from(v1[1]).atan2(f64::from(v1[0])) as f32;
            (center, [len(v1), len(v2)], angle)
        }
    };
    let degrees = (f64::from(angle * 180.0) / std::f64::consts::PI) as f32;
    Rect {
        corners: box_points(center, size, degrees),
        width: f64::from(size[0]),
        height: f64::from(size[1]),
    }
}

/// PaddleOCR's `get_mini_boxes` ordering of a rectangle's corners: sort by x; of the two
/// leftmost the upper is first and the lower last, of the two rightmost the upper is second.
/// (Ties in y pick the later point, as PaddleOCR's `>` does.)
pub fn mini_box(rect: &Rect) -> [Point; 4] {
    let mut p = rect.corners;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    [p[i1], p[i2], p[i3], p[i4]]
}

/// RapidOCR's `order_points_clockwise`: the two smallest x are the left pair, each pair sorted
/// by y (stable), giving top-left, top-right, bottom-right, bottom-left.
pub fn order_clockwise(points: [[i64; 2]; 4]) -> [[i64; 2]; 4] {
    let mut p = points;
    p.sort_by_key(|q| q[0]);
    let (mut left, mut right) = ([p[0], p[1]], [p[2], p[3]]);
    left.sort_by_key(|q| q[1]);
    right.sort_by_key(|q| q[1]);
    [left[0], right[0], right[1], left[1]]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Equal up to f32 rounding.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn hull_drops_inner_collinear_and_repeated_points() {
        let pts = [
            [0, 0],
            [5, 0],
            [5, 3],
            [0, 3],
            [2, 1],
            [3, 3],
            [0, 1],
            [5, 0],
            [2, 0],
        ];
        let hull = convex_hull(&pts);
        assert_eq!(hull.len(), 4);
        for corner in [[0, 0], [5, 0], [5, 3], [0, 3]] {
            assert!(hull.contains(&corner));
        }
        assert_eq!(convex_hull(&[[1, 1], [1, 1]]), vec![[1, 1]]);
        assert_eq!(convex_hull(&[[0, 0], [1, 1], [2, 2]]).len(), 2);
        assert!(convex_hull(&[]).is_empty());
    }

    #[test]
    fn axis_aligned_rect_is_exact() {
        // The pixel centres of a 10x4 block span 9x3.
        let pts: Vec<[i64; 2]> = (0..10)
            .flat_map(|x| (0..4).map(move |y| [x + 7, y + 5]))
            .collect();
        let rect = min_area_rect(&convex_hull(&pts));
        assert_eq!(rect.min_side(), 3.0);
        assert_eq!(rect.width.max(rect.height), 9.0);
        assert_eq!(
            mini_box(&rect),
            [[7.0, 5.0], [16.0, 5.0], [16.0, 8.0], [7.0, 8.0]]
        );
    }

    #[test]
    fn rotated_rect() {
        // A diamond |x| + |y| <= 2 (shifted): the min-area rectangle is the diamond itself.
        let pts = [[12, 10], [10, 12], [8, 10], [10, 8]];
        let rect = min_area_rect(&convex_hull(&pts));
        assert!(close(rect.width, 8f64.sqrt()) && close(rect.height, 8f64.sqrt()));
        let b = mini_box(&rect);
        for corner in [[12.0, 10.0], [10.0, 12.0], [8.0, 10.0], [10.0, 8.0]] {
            assert!(
                b.iter()
                    .any(|p| close(p[0], corner[0]) && close(p[1], corner[1])),
                "{b:?}"
            );
        }
        // A tilted strip: the rectangle follows the tilt, not the axes.
        let strip: Vec<[i64; 2]> = (0..20).flat_map(|x| [[x, x / 2], [x, x / 2 + 1]]).collect();
        let rect = min_area_rect(&convex_hull(&strip));
        assert!(rect.min_side() < 1.5, "{rect:?}");
        assert!(rect.width.max(rect.height) > 20.0, "{rect:?}");
    }

    #[test]
    fn degenerate_rects() {
        let r = min_area_rect(&convex_hull(&[[3, 4]]));
        assert_eq!((r.width, r.height), (0.0, 0.0));
        let r = min_area_rect(&convex_hull(&[[0, 0], [4, 3]]));
        assert_eq!(r.min_side(), 0.0);
        assert!(close(r.width.max(r.height), 5.0));
        assert_eq!(min_area_rect(&[]).min_side(), 0.0);
    }

    #[test]
    fn clockwise_from_top_left() {
        assert_eq!(
            order_clockwise([[10, 20], [1, 2], [10, 2], [1, 20]]),
            [[1, 2], [10, 2], [10, 20], [1, 20]]
        );
        // Slightly rotated.
        assert_eq!(
            order_clockwise([[50, 3], [51, 12], [11, 14], [10, 5]]),
            [[10, 5], [50, 3], [51, 12], [11, 14]]
        );
    }
}
