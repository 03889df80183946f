//! The YOLO decoding itself, free of WIT types so it is tested on the host: candidate boxes from
//! the raw output (YOLOX grids, or already-decoded YOLOv5 / YOLOv8 rows), the best class per
//! anchor, the score threshold, the map back to frame pixels through `meta`, greedy NMS, and the
//! clip to the frame. Arithmetic is f32, as in the numpy reference code, so that thresholds and
//! NMS ties fall the same way.

/// How the model lays out its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `[1, N, 5 + nc]`, raw: centre offsets and log sizes per grid cell, objectness, class
    /// probabilities; N anchors over the stride grids (ddddocr, YOLOX exports).
    Yolox,
    /// `[1, N, 5 + nc]`, decoded: cx, cy, w, h in input pixels, objectness, class probabilities.
    Yolov5,
    /// `[1, 4 + nc, N]`, decoded, no objectness (Ultralytics YOLOv8/v11 exports); taken as
    /// `[1, N, 4 + nc]` when its last dimension is the smaller (and above 4).
    Yolov8,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub layout: Layout,
    /// Model input (width, height); needed for the YOLOX grids.
    pub input_size: Option<[u32; 2]>,
    pub strides: Vec<u32>,
    /// Keep anchors whose score is above this.
    pub score_threshold: f32,
    /// Suppress a box overlapping a better one by more than this IoU.
    pub nms_iou: f32,
    pub max_detections: usize,
    pub class_agnostic: bool,
}

/// The pre-processing node's `meta`: model = frame * scale + pad, per axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Meta {
    pub src_w: f32,
    pub src_h: f32,
    pub scale_x: f32,
    pub scale_y: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

/// A detection in frame pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Det {
    pub class: usize,
    pub score: f32,
    /// x1, y1, x2, y2.
    pub bbox: [f32; 4],
}

/// Anchor grid cells (x, y, stride) in output order: each stride's grid row-major, strides in
/// order.
fn grid(input: [u32; 2], strides: &[u32]) -> Vec<(f32, f32, f32)> {
    let mut cells = Vec::new();
    for &s in strides {
        let (gw, gh) = (input[0] / s, input[1] / s);
        for gy in 0..gh {
            for gx in 0..gw {
                cells.push((gx as f32, gy as f32, s as f32));
            }
        }
    }
    cells
}

/// Index and value of the best of `scores` (first on ties).
fn best(scores: impl Iterator<Item = f32>) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, s) in scores.enumerate() {
        if s > best.1 {
            best = (i, s);
        }
    }
    best
}

/// IoU of two boxes; `legacy` counts pixels inclusively (+1 on each side), as the YOLOX demo
/// and ddddocr's numpy NMS do.
fn iou(a: &[f32; 4], b: &[f32; 4], legacy: bool) -> f32 {
    let one = if legacy { 1.0 } else { 0.0 };
    let area = |r: &[f32; 4]| (r[2] - r[0] + one) * (r[3] - r[1] + one);
    let w = (a[2].min(b[2]) - a[0].max(b[0]) + one).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1]) + one).max(0.0);
    let inter = w * h;
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Decodes one image's output (`data` of `shape`) into detections, best first.
pub fn decode(
    data: &[f32],
    shape: &[u32],
    meta: &Meta,
    params: &Params,
) -> Result<Vec<Det>, String> {
    let dims: Vec<usize> = match shape {
        [1, a, b] | [a, b] => vec![*a as usize, *b as usize],
        _ => {
            return Err(format!(
            "output shape {shape:?}; expected [1, N, 5+nc] (yolox/yolov5) or [1, 4+nc, N] (yolov8)"
        ))
        }
    };
    let (d0, d1) = (dims[0], dims[1]);
    if d0 * d1 != data.len() {
        return Err(format!(
            "output of shape {shape:?} has {} values",
            data.len()
        ));
    }
    // (anchors, values per anchor, value accessor stride: value j of anchor i is at i*si + j*sj)
    let (n, width, si, sj) = match params.layout {
        Layout::Yolox | Layout::Yolov5 => (d0, d1, d1, 1),
        // [1, N, 4 + nc] only when its last dimension is the smaller and can hold a class.
        Layout::Yolov8 if d1 < d0 && d1 > 4 => (d0, d1, d1, 1),
        Layout::Yolov8 => (d1, d0, 1, d1),
    };
    let head = if params.layout == Layout::Yolov8 {
        4
    } else {
        5
    };
    if width <= head {
        return Err(format!(
            "output shape {shape:?} leaves no class scores for layout {:?} ({head} box values first)",
            params.layout
        ));
    }
    let cells = match params.layout {
        Layout::Yolox => {
            let input = params.input_size.ok_or("yolox needs input_size")?;
            let cells = grid(input, &params.strides);
            if cells.len() != n {
                return Err(format!(
                    "the output has {n} anchors but input_size {input:?} with strides {:?} gives {}",
                    params.strides,
                    cells.len()
                ));
            }
            cells
        }
        _ => Vec::new(),
    };
    let at = |i: usize, j: usize| data.get(i * si + j * sj).copied().unwrap_or(0.0);

    let mut candidates: Vec<Det> = Vec::new();
    for i in 0..n {
        let (class, score) = match params.layout {
            Layout::Yolov8 => best((head..width).map(|j| at(i, j))),
            _ => {
                let obj = at(i, 4);
                best((head..width).map(|j| obj * at(i, j)))
            }
        };
        // Strictly above, as the references; NaN never passes.
        if score.partial_cmp(&params.score_threshold) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let (mut cx, mut cy, mut w, mut h) = (at(i, 0), at(i, 1), at(i, 2), at(i, 3));
        if let Some(&(gx, gy, s)) = cells.get(i) {
            cx = (cx + gx) * s;
            cy = (cy + gy) * s;
            w = w.exp() * s;
            h = h.exp() * s;
        }
        let fx = |x: f32| (x - meta.pad_x) / meta.scale_x;
        let fy = |y: f32| (y - meta.pad_y) / meta.scale_y;
        candidates.push(Det {
            class,
            score,
            bbox: [
                fx(cx - w / 2.0),
                fy(cy - h / 2.0),
                fx(cx + w / 2.0),
                fy(cy + h / 2.0),
            ],
        });
    }

    // Greedy NMS, best score first (stable: earlier anchors first on ties).
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let legacy = params.layout == Layout::Yolox;
    let mut kept: Vec<Det> = Vec::new();
    for c in candidates {
        if kept.len() >= params.max_detections {
            break;
        }
        let suppressed = kept.iter().any(|k| {
            (params.class_agnostic || k.class == c.class)
                && iou(&k.bbox, &c.bbox, legacy) > params.nms_iou
        });
        if !suppressed {
            kept.push(c);
        }
    }
    for d in &mut kept {
        d.bbox = [
            d.bbox[0].clamp(0.0, meta.src_w),
            d.bbox[1].clamp(0.0, meta.src_h),
            d.bbox[2].clamp(0.0, meta.src_w),
            d.bbox[3].clamp(0.0, meta.src_h),
        ];
    }
    Ok(kept)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            src_w: 100.0,
            src_h: 100.0,
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
        }
    }

    fn params(layout: Layout) -> Params {
        Params {
            layout,
            input_size: Some([32, 16]),
            strides: vec![8, 16],
            score_threshold: 0.25,
            nms_iou: 0.45,
            max_detections: 300,
            class_agnostic: false,
        }
    }

    #[test]
    fn grids_in_output_order() {
        // 32x16 input: stride 8 gives 4x2 cells, stride 16 gives 2x1.
        let g = grid([32, 16], &[8, 16]);
        assert_eq!(g.len(), 10);
        assert_eq!(g[0], (0.0, 0.0, 8.0));
        assert_eq!(g[3], (3.0, 0.0, 8.0));
        assert_eq!(g[4], (0.0, 1.0, 8.0));
        assert_eq!(g[8], (0.0, 0.0, 16.0));
        assert_eq!(g[9], (1.0, 0.0, 16.0));
    }

    #[test]
    fn yolox_decodes_grid_offsets_and_log_sizes() {
        // 10 anchors x (5 + 2 classes); only anchor 5 (stride 8, cell (1,1)) and 9 (stride 16,
        // cell (1,0)) score.
        let mut data = vec![0.0f32; 10 * 7];
        let row = |i: usize| i * 7;
        data[row(5)..row(5) + 7].copy_from_slice(&[0.5, 0.5, 0.0, (2f32).ln(), 0.9, 0.1, 0.8]);
        data[row(9)..row(9) + 7].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 0.5, 0.4, 0.2]);
        let p = Params {
            score_threshold: 0.1,
            ..params(Layout::Yolox)
        };
        let dets = decode(&data, &[1, 10, 7], &meta(), &p).unwrap();
        assert_eq!(dets.len(), 2);
        // Anchor 5: centre (1.5*8, 1.5*8) = (12, 12), size 8 x 16, class 1, score 0.72.
        assert_eq!(dets[0].class, 1);
        assert!((dets[0].score - 0.72).abs() < 1e-6);
        let want = [8.0, 4.0, 16.0, 20.0];
        assert!(
            dets[0]
                .bbox
                .iter()
                .zip(want)
                .all(|(a, b)| (a - b).abs() < 1e-4),
            "{:?}",
            dets[0].bbox
        );
        // Anchor 9: centre (16, 0), size 16 x 16, clipped at the top.
        assert_eq!(dets[1].class, 0);
        assert_eq!(dets[1].bbox, [8.0, 0.0, 24.0, 8.0]);
        // The anchor count must fit the grids.
        assert!(decode(&data[..63], &[1, 9, 7], &meta(), &p).is_err());
        let no_size = Params {
            input_size: None,
            ..p
        };
        assert!(decode(&data, &[1, 10, 7], &meta(), &no_size).is_err());
    }

    #[test]
    fn yolov8_is_transposed_and_maps_through_meta() {
        // [1, 4 + 2, 3]: column i is anchor i.
        let anchors = [
            [50.0, 60.0, 20.0, 10.0, 0.1, 0.9],
            [51.0, 60.0, 20.0, 10.0, 0.8, 0.2], // overlaps anchor 0 but another class
            [52.0, 61.0, 20.0, 10.0, 0.1, 0.7], // same class as anchor 0, IoU > 0.45
        ];
        let mut data = vec![0.0f32; 18];
        for (i, a) in anchors.iter().enumerate() {
            for (j, v) in a.iter().enumerate() {
                data[j * 3 + i] = *v;
            }
        }
        // Letterboxed: frame 200x100 scaled by 0.5, centred with pad (10, 20).
        let m = Meta {
            src_w: 200.0,
            src_h: 100.0,
            scale_x: 0.5,
            scale_y: 0.5,
            pad_x: 10.0,
            pad_y: 20.0,
        };
        let dets = decode(&data, &[1, 6, 3], &m, &params(Layout::Yolov8)).unwrap();
        assert_eq!(dets.len(), 2);
        assert_eq!((dets[0].class, dets[0].score), (1, 0.9));
        assert_eq!(dets[0].bbox, [60.0, 70.0, 100.0, 90.0]);
        assert_eq!((dets[1].class, dets[1].score), (0, 0.8));
        // Class-agnostic NMS drops the other class too.
        let agnostic = Params {
            class_agnostic: true,
            ..params(Layout::Yolov8)
        };
        assert_eq!(decode(&data, &[1, 6, 3], &m, &agnostic).unwrap().len(), 1);
        // The same data laid out [1, N, 4 + nc] is recognised by its shape.
        let rows: Vec<f32> = anchors.iter().flatten().copied().collect();
        let mut wide = rows.clone();
        wide.extend(std::iter::repeat_n(0.0, 6 * 5)); // 8 anchors: N > 6
        let d2 = decode(&wide, &[1, 8, 6], &m, &params(Layout::Yolov8)).unwrap();
        assert_eq!(d2.len(), 2);
        assert_eq!(d2[0].bbox, dets[0].bbox);
        // max_detections.
        let one = Params {
            max_detections: 1,
            ..params(Layout::Yolov8)
        };
        assert_eq!(decode(&data, &[1, 6, 3], &m, &one).unwrap().len(), 1);
    }

    #[test]
    fn yolov5_uses_objectness() {
        let data = [
            10.0, 10.0, 4.0, 4.0, 0.5, 0.9, 0.1, 30.0, 30.0, 4.0, 4.0, 0.2, 0.9, 0.1,
        ];
        let dets = decode(&data, &[1, 2, 7], &meta(), &params(Layout::Yolov5)).unwrap();
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].score, 0.45);
        assert_eq!(dets[0].bbox, [8.0, 8.0, 12.0, 12.0]);
    }

    #[test]
    fn iou_conventions() {
        let a = [0.0, 0.0, 9.0, 9.0];
        let b = [5.0, 0.0, 14.0, 9.0];
        assert!((iou(&a, &b, false) - 36.0 / 126.0).abs() < 1e-6);
        assert!((iou(&a, &b, true) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0], false), 0.0);
        assert_eq!(iou(&[0.0; 4], &[0.0; 4], false), 0.0);
    }

    #[test]
    fn bad_shapes() {
        let m = meta();
        assert!(decode(&[0.0; 4], &[1, 1, 4], &m, &params(Layout::Yolov5)).is_err());
        assert!(decode(&[0.0; 8], &[1, 2, 2, 2], &m, &params(Layout::Yolov8)).is_err());
        assert!(decode(&[0.0; 7], &[1, 2, 4], &m, &params(Layout::Yolov8)).is_err());
        // No anchors: nothing, not an error.
        assert_eq!(
            decode(&[], &[1, 0, 6], &m, &params(Layout::Yolov5)).unwrap(),
            vec![]
        );
        assert_eq!(
            decode(&[], &[1, 6, 0], &m, &params(Layout::Yolov8)).unwrap(),
            vec![]
        );
    }
}
