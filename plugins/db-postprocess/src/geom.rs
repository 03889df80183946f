//! Plane geometry of DB post-processing: the convex hull (Andrew's monotone chain), the
//! minimum-area enclosing rectangle (`cv2.minAreaRect`: one of the hull's edges is always
//! flush with a side of the optimal rectangle, so trying each edge direction is exact), and
//! PaddleOCR's two ways of ordering four corners (`get_mini_boxes`, `order_points_clockwise`).
//! Points are pixel centres, as in OpenCV contours; coordinates are f64 throughout, so an
//! axis-aligned rectangle over integer points comes out exact.

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

/// A rotated rectangle: corners in order around it, and its side lengths.
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

/// The minimum-area rectangle enclosing `hull` (a convex polygon from `convex_hull`). One or
/// two points give a rectangle of zero width or height, like OpenCV.
pub fn min_area_rect(hull: &[[i64; 2]]) -> Rect {
    match hull.len() {
        0 => {
            return Rect {
                corners: [[0.0; 2]; 4],
                width: 0.0,
                height: 0.0,
            }
        }
        1 => {
            let p = [hull[0][0] as f64, hull[0][1] as f64];
            return Rect {
                corners: [p; 4],
                width: 0.0,
                height: 0.0,
            };
        }
        _ => {}
    }
    let pts: Vec<Point> = hull.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let mut best: Option<(f64, Point, [f64; 4])> = None;
    for i in 0..pts.len() {
        let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = dx.hypot(dy);
        if len == 0.0 {
            continue;
        }
        let u = [dx / len, dy / len];
        let (mut u0, mut u1, mut v0, mut v1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &pts {
            let pu = p[0] * u[0] + p[1] * u[1];
            let pv = -p[0] * u[1] + p[1] * u[0];
            u0 = u0.min(pu);
            u1 = u1.max(pu);
            v0 = v0.min(pv);
            v1 = v1.max(pv);
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.is_none_or(|(best_area, _, _)| area < best_area) {
            best = Some((area, u, [u0, u1, v0, v1]));
        }
    }
    let Some((_, u, [u0, u1, v0, v1])) = best else {
        return Rect {
            corners: [pts[0]; 4],
            width: 0.0,
            height: 0.0,
        };
    };
    // Back from (u, v) coordinates: p = pu * u + pv * v with v = (-u.y, u.x).
    // OpenCV hands back f32 corners and sizes; rounding to f32 likewise turns the f64 noise of
    // a corner that is really an integer (a 45-degree edge, say) back into that integer, which
    // matters to the truncations that follow.
    let f32 = |v: f64| f64::from(v as f32);
    let at = |pu: f64, pv: f64| [f32(pu * u[0] - pv * u[1]), f32(pu * u[1] + pv * u[0])];
    Rect {
        corners: [at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)],
        width: f32(u1 - u0),
        height: f32(v1 - v0),
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

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
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
