//! Binarisation and contour candidates: what PaddleOCR gets from `pred > thresh`, `cv2.dilate` and
//! `cv2.findContours(RETR_LIST, CHAIN_APPROX_SIMPLE)`, reduced to what the rest of DB
//! post-processing reads from a contour: its convex hull (via `cv2.minAreaRect`) and its place in
//! OpenCV's list (which decides the `max_candidates` cut).
//!
//! Rather than trace borders pixel by pixel, the bitmap is cut into horizontal runs and the runs
//! are joined with union-find: foreground 8-connected (each such component has one outer border),
//! background 4-connected (each background component that does not reach the image edge is a hole,
//! which OpenCV lists as a contour of its own). The hull of a component is the hull of its run
//! ends; the hull of a hole's border is the hull of the foreground pixels 4-adjacent to it. OpenCV
//! starts a border where its raster scan first meets it (an outer border at the component's first
//! pixel, a hole border at the pixel left of the hole's first pixel) and lists contours last found
//! first; `candidates` returns them in that order.

use crate::geom::HullStart;

/// `pred > thresh`, then (optionally) `cv2.dilate` with the 2x2 kernel of ones, whose anchor
/// (1,1) makes each output pixel the OR of itself and its left, upper and upper-left neighbours.
/// `prob.len()` must be `width * height`.
pub fn binarize(prob: &[f32], width: usize, height: usize, thresh: f32, dilate: bool) -> Vec<u8> {
    // Sixteen at a time, so that the compare and the narrowing to bytes become one Wasm SIMD
    // step per chunk (the plain map-collect did not vectorise: 0.1 ms more per 640x352 map).
    let mut seg = vec![0u8; prob.len()];
    let mut out = seg.chunks_exact_mut(16);
    let mut src = prob.chunks_exact(16);
    for (o, p) in out.by_ref().zip(src.by_ref()) {
        for (o, &p) in o.iter_mut().zip(p) {
            *o = u8::from(p > thresh);
        }
    }
    for (o, &p) in out.into_remainder().iter_mut().zip(src.remainder()) {
        *o = u8::from(p > thresh);
    }
    if !dilate || width == 0 || height == 0 {
        return seg;
    }
    // Each pass reads one buffer and writes another, so every loop is a plain element-wise OR
    // the compiler vectorises (an in-place pass would carry a dependency from pixel to pixel).
    // Horizontal: each pixel ORs its left neighbour.
    let mut horizontal = vec![0u8; seg.len()];
    for (out, row) in horizontal
        .chunks_exact_mut(width)
        .zip(seg.chunks_exact(width))
    {
        out[0] = row[0];
        for ((o, &here), &left) in out[1..].iter_mut().zip(&row[1..]).zip(row) {
            *o = here | left;
        }
    }
    // Vertical: each row ORs the row above.
    let mut out = seg;
    out[..width].copy_from_slice(&horizontal[..width]);
    for y in 1..height {
        let (above, here) = (
            &horizontal[(y - 1) * width..y * width],
            &horizontal[y * width..(y + 1) * width],
        );
        for ((o, &h), &a) in out[y * width..(y + 1) * width]
            .iter_mut()
            .zip(here)
            .zip(above)
        {
            *o = h | a;
        }
    }
    out
}

/// A horizontal run `x0..=x1` on row `y`.
#[derive(Clone, Copy, Debug)]
struct Run {
    y: u32,
    x0: u32,
    x1: u32,
}

/// Union-find over run indices, with path halving and union by index (the smaller root wins).
struct Forest(Vec<u32>);

impl Forest {
    fn new(n: usize) -> Self {
        Forest((0..n as u32).collect())
    }

    fn find(&mut self, mut i: u32) -> u32 {
        loop {
            let p = self.0[i as usize];
            if p == i {
                return i;
            }
            let gp = self.0[p as usize];
            self.0[i as usize] = gp;
            i = gp;
        }
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.0[hi as usize] = lo;
        }
    }
}

/// Joins the runs of consecutive rows. `row_start[y]..row_start[y + 1]` are row `y`'s runs;
/// `reach` is 1 for 8-connectivity, 0 for 4-connectivity.
fn join_rows(runs: &[Run], row_start: &[usize], reach: u32, forest: &mut Forest) {
    for y in 1..row_start.len().saturating_sub(1) {
        let (mut i, prev_end) = (row_start[y - 1], row_start[y]);
        let (mut j, cur_end) = (row_start[y], row_start[y + 1]);
        while i < prev_end && j < cur_end {
            let (p, c) = (runs[i], runs[j]);
            if p.x0 <= c.x1 + reach && c.x0 <= p.x1 + reach {
                forest.union(i as u32, j as u32);
            }
            if p.x1 < c.x1 {
                i += 1;
            } else {
                j += 1;
            }
        }
    }
}

/// Runs of `bitmap` (values 0/1) equal to `value`, with each row's start index.
fn collect_runs(bitmap: &[u8], width: usize, value: u8) -> (Vec<Run>, Vec<usize>) {
    let mut runs = Vec::new();
    let mut row_start = vec![0];
    for (y, row) in bitmap.chunks_exact(width).enumerate() {
        let mut x = 0;
        while x < width {
            let end = run_end(row, x);
            if row[x] == value {
                runs.push(Run {
                    y: y as u32,
                    x0: x as u32,
                    x1: (end - 1) as u32,
                });
            }
            x = end;
        }
        row_start.push(runs.len());
    }
    (runs, row_start)
}

/// The end (exclusive) of the run of equal bytes starting at `x`: eight bytes at a time while a
/// whole word matches (text maps are mostly long runs of background), then byte by byte.
fn run_end(row: &[u8], mut x: usize) -> usize {
    let v = row[x];
    let word = u64::from_ne_bytes([v; 8]);
    while let Some(chunk) = row.get(x..x + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        if u64::from_ne_bytes(bytes) != word {
            break;
        }
        x += 8;
    }
    while x < row.len() && row[x] == v {
        x += 1;
    }
    x
}

/// The contours DB post-processing looks at, in OpenCV's order, each as the points whose convex
/// hull is the contour's hull (pixel centres).
pub struct Candidates {
    offsets: Vec<usize>,
    points: Vec<[i32; 2]>,
    starts: Vec<HullStart>,
}

impl Candidates {
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Where OpenCV's hull of contour `i` starts.
    pub fn hull_start(&self, i: usize) -> HullStart {
        self.starts
            .get(i)
            .copied()
            .unwrap_or(HullStart::EndAtTopLeft)
    }

    pub fn points(&self, i: usize) -> &[[i32; 2]] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.points.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Per-label point lists, filled by counting sort.
struct Groups {
    count: Vec<usize>,
    items: Vec<(u32, [i32; 2])>,
}

impl Groups {
    fn new(labels: usize) -> Self {
        Groups {
            count: vec![0; labels],
            items: Vec::new(),
        }
    }

    fn push(&mut self, label: u32, point: [i32; 2]) {
        self.count[label as usize] += 1;
        self.items.push((label, point));
    }

    /// (offsets, points) with label `l`'s points at `offsets[l]..offsets[l + 1]`.
    fn finish(self) -> (Vec<usize>, Vec<[i32; 2]>) {
        let mut offsets = Vec::with_capacity(self.count.len() + 1);
        let mut total = 0;
        offsets.push(0);
        for c in &self.count {
            total += c;
            offsets.push(total);
        }
        let mut next = offsets.clone();
        let mut points = vec![[0, 0]; total];
        for (label, p) in self.items {
            let slot = &mut next[label as usize];
            points[*slot] = p;
            *slot += 1;
        }
        (offsets, points)
    }
}

/// The contours of a binary `bitmap` (`width * height` values 0/1) in the order
/// `cv2.findContours(RETR_LIST)` lists them, at most `max_candidates` of them.
pub fn candidates(bitmap: &[u8], width: usize, height: usize, max_candidates: usize) -> Candidates {
    let empty = Candidates {
        offsets: vec![0],
        points: Vec::new(),
        starts: Vec::new(),
    };
    if width == 0 || height == 0 || bitmap.len() != width * height {
        return empty;
    }

    // Foreground components (8-connected), labelled in raster order of their first pixel.
    let (fg, fg_rows) = collect_runs(bitmap, width, 1);
    let mut forest = Forest::new(fg.len());
    join_rows(&fg, &fg_rows, 1, &mut forest);
    let mut fg_label = vec![u32::MAX; fg.len()];
    // (raster index of the border's start, hole start pixel or None, label)
    let mut starts: Vec<(u64, Option<[i64; 2]>, u32)> = Vec::new();
    let mut n_fg = 0u32;
    for (i, run) in fg.iter().enumerate() {
        let root = forest.find(i as u32) as usize;
        if fg_label[root] == u32::MAX {
            fg_label[root] = n_fg;
            starts.push((
                u64::from(run.y) * width as u64 + u64::from(run.x0),
                None,
                n_fg,
            ));
            n_fg += 1;
        }
        fg_label[i] = fg_label[root];
    }

    // Holes: background components (4-connected) that do not touch the image edge.
    let (bg, bg_rows) = collect_runs(bitmap, width, 0);
    let mut forest = Forest::new(bg.len());
    join_rows(&bg, &bg_rows, 0, &mut forest);
    let mut outside = vec![false; bg.len()];
    for (i, run) in bg.iter().enumerate() {
        if run.y == 0 || run.y as usize == height - 1 || run.x0 == 0 || run.x1 as usize == width - 1
        {
            let root = forest.find(i as u32) as usize;
            outside[root] = true;
        }
    }
    let mut hole_label = vec![u32::MAX; bg.len()];
    let mut n_holes = 0u32;
    for (i, run) in bg.iter().enumerate() {
        let root = forest.find(i as u32) as usize;
        if outside[root] {
            continue;
        }
        if hole_label[root] == u32::MAX {
            hole_label[root] = n_holes;
            // The border starts at the foreground pixel left of the hole's first pixel.
            starts.push((
                u64::from(run.y) * width as u64 + u64::from(run.x0) - 1,
                Some([i64::from(run.x0) - 1, i64::from(run.y)]),
                n_holes,
            ));
            n_holes += 1;
        }
        hole_label[i] = hole_label[root];
    }

    // OpenCV lists the contour found last first.
    starts.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    starts.truncate(max_candidates);

    // Keep only the chosen components' and holes' points.
    let mut fg_slot = vec![u32::MAX; n_fg as usize];
    let mut hole_slot = vec![u32::MAX; n_holes as usize];
    for (slot, &(_, hole, label)) in starts.iter().enumerate() {
        if hole.is_some() {
            hole_slot[label as usize] = slot as u32;
        } else {
            fg_slot[label as usize] = slot as u32;
        }
    }
    let mut groups = Groups::new(starts.len());
    for (i, run) in fg.iter().enumerate() {
        let slot = fg_slot[fg_label[i] as usize];
        if slot != u32::MAX {
            groups.push(slot, [run.x0 as i32, run.y as i32]);
            if run.x1 != run.x0 {
                groups.push(slot, [run.x1 as i32, run.y as i32]);
            }
        }
    }
    if n_holes > 0 {
        for (i, run) in bg.iter().enumerate() {
            let label = hole_label[i];
            if label == u32::MAX {
                continue;
            }
            let slot = hole_slot[label as usize];
            if slot == u32::MAX {
                continue;
            }
            // Hole runs never touch the edge: x0 >= 1, x1 <= width - 2, 1 <= y <= height - 2.
            let (y, x0, x1) = (run.y as usize, run.x0 as usize, run.x1 as usize);
            groups.push(slot, [x0 as i32 - 1, y as i32]);
            groups.push(slot, [x1 as i32 + 1, y as i32]);
            for ny in [y - 1, y + 1] {
                let row = &bitmap[ny * width + x0..=ny * width + x1];
                if let (Some(first), Some(last)) = (
                    row.iter().position(|&v| v != 0),
                    row.iter().rposition(|&v| v != 0),
                ) {
                    groups.push(slot, [(x0 + first) as i32, ny as i32]);
                    groups.push(slot, [(x0 + last) as i32, ny as i32]);
                }
            }
        }
    }
    let (offsets, points) = groups.finish();
    let starts = starts
        .iter()
        .map(|&(_, hole, _)| hole.map_or(HullStart::EndAtTopLeft, HullStart::HoleFrom))
        .collect();
    Candidates {
        offsets,
        points,
        starts,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The 2x2 dilation written the obvious way: each pixel ORs itself and its left, upper and
    /// upper-left neighbours.
    fn dilate_reference(seg: &[u8], w: usize, h: usize) -> Vec<u8> {
        let at = |x: usize, y: usize| seg[y * w + x];
        let mut out = vec![0; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut v = at(x, y);
                if x > 0 {
                    v |= at(x - 1, y);
                }
                if y > 0 {
                    v |= at(x, y - 1);
                }
                if x > 0 && y > 0 {
                    v |= at(x - 1, y - 1);
                }
                out[y * w + x] = v;
            }
        }
        out
    }

    /// The per-byte run scan the word-at-a-time one replaced.
    fn runs_reference(bitmap: &[u8], width: usize, value: u8) -> Vec<(u32, u32, u32)> {
        let mut runs = Vec::new();
        for (y, row) in bitmap.chunks_exact(width).enumerate() {
            let mut x = 0;
            while x < width {
                if row[x] == value {
                    let x0 = x;
                    while x < width && row[x] == value {
                        x += 1;
                    }
                    runs.push((y as u32, x0 as u32, (x - 1) as u32));
                } else {
                    x += 1;
                }
            }
        }
        runs
    }

    #[test]
    fn dilation_and_runs_match_the_plain_loops_on_random_maps() {
        // A small xorshift: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for w in 1..=19 {
            for h in 1..=4 {
                for density in [2u64, 8, 64] {
                    // Sparse maps exercise the 8-byte skips, dense ones the byte loop.
                    let prob: Vec<f32> = (0..w * h)
                        .map(|_| if next() % density == 0 { 0.9 } else { 0.1 })
                        .collect();
                    let seg = binarize(&prob, w, h, 0.3, false);
                    let grown = binarize(&prob, w, h, 0.3, true);
                    assert_eq!(grown, dilate_reference(&seg, w, h), "{w}x{h}");
                    for value in [0, 1] {
                        let got: Vec<_> = collect_runs(&grown, w, value)
                            .0
                            .iter()
                            .map(|r| (r.y, r.x0, r.x1))
                            .collect();
                        assert_eq!(got, runs_reference(&grown, w, value), "{w}x{h} {value}");
                    }
                }
            }
        }
        assert!(binarize(&[], 4, 0, 0.3, true).is_empty());
    }

    fn bitmap(rows: &[&str]) -> (Vec<u8>, usize, usize) {
        let w = rows[0].len();
        let data = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
            .collect();
        (data, w, rows.len())
    }

    fn sorted(points: &[[i32; 2]]) -> Vec<[i32; 2]> {
        let mut p = points.to_vec();
        p.sort_unstable();
        p.dedup();
        p
    }

    #[test]
    fn threshold_and_dilation_grow_right_and_down() {
        let mut prob = vec![0.0f32; 36];
        prob[2 * 6 + 2] = 0.9; // (2,2)
        prob[5] = 0.31; // (5,0): the right edge, grows down only
        prob[5 * 6] = 0.3; // (0,5): not above the threshold
        let plain = binarize(&prob, 6, 6, 0.3, false);
        assert_eq!(plain.iter().filter(|&&v| v == 1).count(), 2);
        let grown = binarize(&prob, 6, 6, 0.3, true);
        let expected = bitmap(&[".....#", ".....#", "..##..", "..##..", "......", "......"]);
        assert_eq!(grown, expected.0);
        // NaN is never above the threshold.
        assert_eq!(binarize(&[f32::NAN], 1, 1, 0.3, true), vec![0]);
    }

    #[test]
    fn lists_components_and_holes_last_found_first() {
        let (b, w, h) = bitmap(&[
            "##.......", // A starts at (0,0)
            "##...####", // B starts at (5,1)
            ".....#..#", // hole of B starts at (5,2)
            "..#..####", // C starts at (2,3), a single pixel
            "........#",
        ]);
        let c = candidates(&b, w, h, 1000);
        assert_eq!(c.len(), 4);
        assert_eq!(sorted(c.points(0)), vec![[2, 3]]); // C
                                                       // The hole's border: the ring pixels 4-adjacent to (6,2) and (7,2).
        assert_eq!(
            sorted(c.points(1)),
            vec![[5, 2], [6, 1], [6, 3], [7, 1], [7, 3], [8, 2]]
        );
        assert_eq!(
            sorted(c.points(2)),
            vec![[5, 1], [5, 2], [5, 3], [8, 1], [8, 2], [8, 3], [8, 4]]
        ); // B: run ends
        assert_eq!(sorted(c.points(3)), vec![[0, 0], [0, 1], [1, 0], [1, 1]]); // A
        let first_two = candidates(&b, w, h, 2);
        assert_eq!(first_two.len(), 2);
        assert_eq!(sorted(first_two.points(0)), vec![[2, 3]]);
    }

    #[test]
    fn diagonal_neighbours_join_and_background_leaks_diagonally_only_to_holes() {
        let (b, w, h) = bitmap(&[
            "#.....", //
            ".#.##.", // (1,1) joins (0,0) diagonally
            "..#..#", // background (4,2) touches the edge only diagonally: a hole
            "...##.",
        ]);
        let c = candidates(&b, w, h, 1000);
        // One 8-connected component, and the hole at (3,2)-(4,2).
        assert_eq!(c.len(), 2);
        assert_eq!(
            sorted(c.points(0)),
            vec![[2, 2], [3, 1], [3, 3], [4, 1], [4, 3], [5, 2]]
        );
        assert_eq!(c.points(1).len(), 8);
    }

    #[test]
    fn edge_cases() {
        assert_eq!(candidates(&[], 0, 0, 10).len(), 0);
        assert_eq!(candidates(&[1, 1], 3, 1, 10).len(), 0); // wrong size
        let (b, w, h) = bitmap(&["###", "#.#", "###"]);
        let c = candidates(&b, w, h, 10);
        assert_eq!(c.len(), 2);
        assert_eq!(sorted(c.points(0)), vec![[0, 1], [1, 0], [1, 2], [2, 1]]);
        assert!(c.points(5).is_empty());
        assert_eq!(candidates(&b, w, h, 0).len(), 0);
    }
}
