//! PaddleOCR's `unclip`: grow a box by `distance = area * unclip_ratio / perimeter` with
//! pyclipper (`PyclipperOffset`, `JT_ROUND`, `ET_CLOSEDPOLYGON`, default arc tolerance 0.25).
//! The offset is reproduced the way Clipper 6.4 computes it, integer vertices included:
//! pyclipper truncates the float corners to integers, Clipper orients the path, walks its
//! vertices with unit edge normals and approximates each round corner by a fixed angular step,
//! rounding every output vertex half away from zero. The closing union Clipper runs only removes
//! collinear vertices here (the offset of a convex quadrilateral is simple), which cannot change
//! the minimum-area rectangle taken next, so it is left out.

use crate::geom::Point;

/// Clipper's default arc tolerance, also pyclipper's.
const ARC_TOLERANCE: f64 = 0.25;

/// Area and perimeter of a polygon, as shapely's `Polygon(box).area` and `.length`.
pub fn area_and_perimeter(poly: &[Point]) -> (f64, f64) {
    let n = poly.len();
    let (mut twice_area, mut perimeter) = (0.0, 0.0);
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        twice_area += a[0] * b[1] - b[0] * a[1];
        perimeter += (b[0] - a[0]).hypot(b[1] - a[1]);
    }
    ((twice_area / 2.0).abs(), perimeter)
}

/// Clipper's `Round`: half away from zero.
fn round(v: f64) -> i64 {
    if v < 0.0 {
        (v - 0.5) as i64
    } else {
        (v + 0.5) as i64
    }
}

/// Clipper's signed `Area` (positive for its "orientation true").
fn clipper_area(poly: &[[i64; 2]]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let mut a = 0.0;
    let mut j = n - 1;
    for i in 0..n {
        a += (poly[j][0] as f64 + poly[i][0] as f64) * (poly[j][1] as f64 - poly[i][1] as f64);
        j = i;
    }
    -a * 0.5
}

fn unit_normal(a: [i64; 2], b: [i64; 2]) -> [f64; 2] {
    if a == b {
        return [0.0, 0.0];
    }
    let (dx, dy) = ((b[0] - a[0]) as f64, (b[1] - a[1]) as f64);
    let f = 1.0 / (dx * dx + dy * dy).sqrt();
    [dy * f, -dx * f]
}

/// The vertices of `PyclipperOffset().AddPath(poly, JT_ROUND, ET_CLOSEDPOLYGON)` then
/// `.Execute(delta)` for a positive `delta`; empty when the path has fewer than three distinct
/// vertices (where PaddleOCR would fail).
pub fn offset_round(poly: &[Point], delta: f64) -> Vec<[i64; 2]> {
    // pyclipper converts coordinates to integers by truncation.
    let path: Vec<[i64; 2]> = poly.iter().map(|p| [p[0] as i64, p[1] as i64]).collect();
    // AddPath: drop a closing repeat of the first point and consecutive repeats.
    let mut high = path.len();
    while high > 1 && path.first() == path.get(high - 1) {
        high -= 1;
    }
    let mut src: Vec<[i64; 2]> = Vec::with_capacity(high);
    for &p in path.iter().take(high) {
        if src.last() != Some(&p) {
            src.push(p);
        }
    }
    if src.len() < 3 || !delta.is_finite() || delta <= 0.0 {
        return src;
    }
    // FixOrientations: Clipper wants "orientation true" (non-negative area) for outward offsets.
    if clipper_area(&src) < 0.0 {
        src.reverse();
    }
    if delta < 1e-20 {
        return src;
    }
    let y = if ARC_TOLERANCE > delta * ARC_TOLERANCE {
        delta * ARC_TOLERANCE
    } else {
        ARC_TOLERANCE
    };
    let mut steps = std::f64::consts::PI / (1.0 - y / delta).acos();
    if steps > delta * std::f64::consts::PI {
        steps = delta * std::f64::consts::PI;
    }
    let two_pi = 2.0 * std::f64::consts::PI;
    let (sin, cos) = (two_pi / steps).sin_cos();
    let steps_per_rad = steps / two_pi;

    let n = src.len();
    let normals: Vec<[f64; 2]> = (0..n)
        .map(|j| unit_normal(src[j], src[(j + 1) % n]))
        .collect();
    let at = |p: [i64; 2], nrm: [f64; 2]| {
        [
            round(p[0] as f64 + nrm[0] * delta),
            round(p[1] as f64 + nrm[1] * delta),
        ]
    };
    let mut out = Vec::with_capacity(n * 4);
    let mut k = n - 1;
    for j in 0..n {
        let (nk, nj, p) = (normals[k], normals[j], src[j]);
        let mut sin_a = nk[0] * nj[1] - nj[0] * nk[1];
        if (sin_a * delta).abs() < 1.0 {
            let cos_a = nk[0] * nj[0] + nj[1] * nk[1];
            if cos_a > 0.0 {
                // Nearly straight: one vertex, and (as in Clipper) k is not advanced.
                out.push(at(p, nk));
                continue;
            }
        } else {
            sin_a = sin_a.clamp(-1.0, 1.0);
        }
        if sin_a * delta < 0.0 {
            // A concave corner.
            out.push(at(p, nk));
            out.push(p);
            out.push(at(p, nj));
        } else {
            // DoRound.
            let a = sin_a.atan2(nk[0] * nj[0] + nk[1] * nj[1]);
            let count = round(steps_per_rad * a.abs()).max(1);
            let (mut x, mut y) = (nk[0], nk[1]);
            for _ in 0..count {
                out.push(at(p, [x, y]));
                let x2 = x;
                x = x * cos - sin * y;
                y = x2 * sin + y * cos;
            }
            out.push(at(p, nj));
        }
        k = j;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::geom::{convex_hull, min_area_rect};

    #[test]
    fn area_and_perimeter_of_a_rectangle() {
        let r = [[0.0, 0.0], [4.0, 0.0], [4.0, 3.0], [0.0, 3.0]];
        assert_eq!(area_and_perimeter(&r), (12.0, 14.0));
        let rev = [r[3], r[2], r[1], r[0]];
        assert_eq!(area_and_perimeter(&rev), (12.0, 14.0));
    }

    /// The vertex set, without the repeats and collinear vertices Clipper's closing union drops.
    fn cleaned(poly: &[[i64; 2]]) -> Vec<[i64; 2]> {
        let mut hull = convex_hull(poly);
        hull.sort_unstable();
        hull
    }

    #[test]
    fn matches_pyclipper() {
        // pyclipper 1.3: o = PyclipperOffset(); o.AddPath(quad, JT_ROUND, ET_CLOSEDPOLYGON);
        // o.Execute(d) for the quad below (float corners, truncated by pyclipper).
        let quad = [[1.7, 1.7], [10.9, 1.2], [10.6, 5.99], [1.2, 5.5]];
        let cases: [(f64, &[[i64; 2]]); 3] = [
            (0.0001, &[[10, 5], [1, 5], [1, 1], [10, 1]]),
            (
                2.0,
                &[
                    [12, 0],
                    [12, 5],
                    [11, 7],
                    [1, 7],
                    [-1, 6],
                    [-1, 1],
                    [0, -1],
                    [10, -1],
                ],
            ),
            (
                13.3333,
                &[
                    [-12, 1],
                    [-12, 5],
                    [-11, -4],
                    [-11, 10],
                    [-9, -8],
                    [-8, 15],
                    [-4, -11],
                    [-4, 17],
                    [1, -12],
                    [1, 18],
                    [10, -12],
                    [10, 18],
                    [15, -11],
                    [15, 17],
                    [19, -9],
                    [20, 14],
                    [22, -4],
                    [22, 10],
                    [23, 1],
                    [23, 5],
                ],
            ),
        ];
        for (d, expected) in cases {
            assert_eq!(
                cleaned(&offset_round(&quad, d)),
                cleaned(expected),
                "d = {d}"
            );
        }
        // Every vertex pyclipper keeps is one of ours (ours adds only collinear ones).
        let ours = offset_round(&quad, 2.0);
        assert!(cases[1].1.iter().all(|p| ours.contains(p)));
    }

    #[test]
    fn offset_rectangle_grows_by_twice_the_distance() {
        let rect = [[10.0, 20.0], [110.0, 20.0], [110.0, 40.0], [10.0, 40.0]];
        let (area, perimeter) = area_and_perimeter(&rect);
        let d = area * 1.6 / perimeter; // 2000 * 1.6 / 240 = 13.33
        let grown = min_area_rect(&convex_hull(&offset_round(&rect, d)));
        assert!(
            (grown.width.max(grown.height) - (100.0 + 2.0 * d)).abs() < 1.0,
            "{grown:?}"
        );
        assert!(
            (grown.min_side() - (20.0 + 2.0 * d)).abs() < 1.0,
            "{grown:?}"
        );
        // Either orientation of the input gives the same polygon.
        let mut a = offset_round(&rect, d);
        let mut b = offset_round(&[rect[3], rect[2], rect[1], rect[0]], d);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }

    #[test]
    fn degenerate_paths() {
        assert!(offset_round(&[], 3.0).is_empty());
        assert_eq!(offset_round(&[[1.5, 1.5], [1.2, 1.9]], 3.0).len(), 1);
        assert_eq!(
            offset_round(&[[0.0, 0.0], [5.0, 0.0], [5.0, 5.0]], 0.0).len(),
            3
        );
    }
}
