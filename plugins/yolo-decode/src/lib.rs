//! `yolo-decode`: turns a YOLO detector's raw output into labelled boxes in frame pixels.
//!
//! Two output layouts cover the models users export: YOLOX (`[1, anchors, 5 + classes]`, boxes
//! relative to a grid per stride, with objectness; what ddddocr's detector emits) and YOLOv8
//! (`[1, 4 + classes, anchors]`, absolute centre/size in input pixels, no objectness). Scores
//! are thresholded, then greedy non-maximum suppression runs per class (or across classes), and
//! boxes are mapped back through the pre-processing node's `meta` tensor
//! (`[src_w, src_h, scale_x, scale_y, pad_x, pad_y]`), which covers top-left and centred
//! letterboxes alike. Class names come from config, so one component serves any model.

wit_bindgen::generate!({ path: "../../wit", world: "node-world" });

use std::cell::RefCell;

use exports::streamhost::node::node::{Guest, Input, NodeError, Value};
use serde::Deserialize;
use streamhost::node::types::{Bbox, Detection, Tensor};

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Yolox,
    Yolov8,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub layout: Layout,
    #[serde(default)]
    pub input_size: Option<[u32; 2]>,
    #[serde(default = "default_strides")]
    pub strides: Vec<u32>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default = "default_iou")]
    pub nms_iou: f32,
    #[serde(default)]
    pub class_names: Vec<String>,
    #[serde(default = "default_max")]
    pub max_detections: usize,
    #[serde(default)]
    pub class_agnostic_nms: bool,
}

fn default_strides() -> Vec<u32> {
    vec![8, 16, 32]
}
fn default_iou() -> f32 {
    0.45
}
fn default_max() -> usize {
    300
}

impl Config {
    fn threshold(&self) -> f32 {
        self.score_threshold.unwrap_or(match self.layout {
            Layout::Yolox => 0.1,
            Layout::Yolov8 => 0.25,
        })
    }
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

/// A candidate in model-input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub class: usize,
    pub score: f32,
    pub xyxy: [f32; 4],
}

fn best_class(scores: impl Iterator<Item = f32>) -> (usize, f32) {
    scores.enumerate().fold(
        (0, f32::MIN),
        |(bi, bs), (i, s)| if s > bs { (i, s) } else { (bi, bs) },
    )
}

fn xyxy(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

/// YOLOX: `[anchors, 5 + nc]` rows over the stride grids of `input_size`.
pub fn decode_yolox(
    data: &[f32],
    anchors: usize,
    width: usize,
    input: [u32; 2],
    strides: &[u32],
    threshold: f32,
) -> Result<Vec<Candidate>, String> {
    let grids: Vec<(usize, usize, f32)> = strides
        .iter()
        .filter(|s| **s > 0)
        .map(|&s| ((input[0] / s) as usize, (input[1] / s) as usize, s as f32))
        .collect();
    let expected: usize = grids.iter().map(|(w, h, _)| w * h).sum();
    if expected != anchors {
        return Err(format!("output has {anchors} anchors but input_size {input:?} with strides {strides:?} gives {expected}"));
    }
    if width < 6 {
        return Err(format!("YOLOX rows need 5 + classes values, got {width}"));
    }
    let mut out = Vec::new();
    let mut rows = data.chunks_exact(width);
    for (gw, gh, stride) in grids {
        for gy in 0..gh {
            for gx in 0..gw {
                let Some(r) = rows.next() else {
                    return Err("output shorter than its shape".into());
                };
                let (class, cls) = best_class(r[5..].iter().copied());
                let score = r[4] * cls;
                if score <= threshold {
                    continue;
                }
                let cx = (r[0] + gx as f32) * stride;
                let cy = (r[1] + gy as f32) * stride;
                let (w, h) = (r[2].exp() * stride, r[3].exp() * stride);
                out.push(Candidate {
                    class,
                    score,
                    xyxy: xyxy(cx, cy, w, h),
                });
            }
        }
    }
    Ok(out)
}

/// YOLOv8: `[4 + nc, anchors]` columns, centre/size in input pixels.
pub fn decode_yolov8(
    data: &[f32],
    rows: usize,
    anchors: usize,
    threshold: f32,
) -> Result<Vec<Candidate>, String> {
    if rows < 5 {
        return Err(format!("YOLOv8 output needs 4 + classes rows, got {rows}"));
    }
    let at = |r: usize, a: usize| data[r * anchors + a];
    let mut out = Vec::new();
    for a in 0..anchors {
        let (class, score) = best_class((4..rows).map(|r| at(r, a)));
        if score > threshold {
            out.push(Candidate {
                class,
                score,
                xyxy: xyxy(at(0, a), at(1, a), at(2, a), at(3, a)),
            });
        }
    }
    Ok(out)
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy NMS, highest score first; at most `max` kept.
pub fn nms(
    mut cands: Vec<Candidate>,
    iou_threshold: f32,
    agnostic: bool,
    max: usize,
) -> Vec<Candidate> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    // Bound the quadratic step: far more candidates than can be kept are noise.
    cands.truncate(max.saturating_mul(10).max(1000));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        if kept.len() >= max {
            break;
        }
        if kept
            .iter()
            .all(|k| (!agnostic && k.class != c.class) || iou(&k.xyxy, &c.xyxy) <= iou_threshold)
        {
            kept.push(c);
        }
    }
    kept
}

/// Maps model-input pixels to frame pixels with the pre-processing meta, clipped to the frame.
pub fn to_frame(c: &Candidate, meta: &[f32]) -> [f32; 4] {
    let [sw, sh, kx, ky, px, py] = [meta[0], meta[1], meta[2], meta[3], meta[4], meta[5]];
    let x = |v: f32| ((v - px) / kx).clamp(0.0, sw);
    let y = |v: f32| ((v - py) / ky).clamp(0.0, sh);
    [x(c.xyxy[0]), y(c.xyxy[1]), x(c.xyxy[2]), y(c.xyxy[3])]
}

fn find(inputs: &[Input], pred: impl Fn(&Tensor) -> bool) -> Option<&Tensor> {
    inputs.iter().find_map(|i| match &i.value {
        Value::Tensors(ts) => ts.iter().find(|t| pred(t)),
        _ => None,
    })
}

fn run(config: &Config, inputs: &[Input]) -> Result<Vec<Detection>, NodeError> {
    let meta = find(inputs, |t| t.name == "meta" && t.data.len() == 6).ok_or_else(|| {
        NodeError::InvalidInput(
            "no `meta` tensor (connect the pre-processing node's `.meta`)".into(),
        )
    })?;
    let out = find(inputs, |t| t.name != "meta" && t.shape.len() == 3)
        .ok_or_else(|| NodeError::InvalidInput("no 3-D model output tensor".into()))?;
    let dims: Vec<usize> = out.shape.iter().map(|&d| d as usize).collect();
    if dims.iter().product::<usize>() != out.data.len() || dims[0] != 1 {
        return Err(NodeError::InvalidInput(format!(
            "output of shape {:?} carries {} values",
            out.shape,
            out.data.len()
        )));
    }
    let threshold = config.threshold();
    let cands = match config.layout {
        Layout::Yolox => {
            let input = config.input_size.ok_or_else(|| {
                NodeError::InvalidConfig("yolox needs input_size = [w, h]".into())
            })?;
            decode_yolox(
                &out.data,
                dims[1],
                dims[2],
                input,
                &config.strides,
                threshold,
            )
        }
        Layout::Yolov8 => decode_yolov8(&out.data, dims[1], dims[2], threshold),
    }
    .map_err(NodeError::InvalidInput)?;
    let kept = nms(
        cands,
        config.nms_iou,
        config.class_agnostic_nms,
        config.max_detections,
    );
    Ok(kept
        .iter()
        .map(|c| {
            let [x1, y1, x2, y2] = to_frame(c, &meta.data);
            Detection {
                label: config
                    .class_names
                    .get(c.class)
                    .cloned()
                    .unwrap_or_else(|| c.class.to_string()),
                score: (c.score * 10_000.0).round() / 10_000.0,
                bbox: Bbox { x1, y1, x2, y2 },
            }
        })
        .collect())
}

struct YoloDecode;

impl Guest for YoloDecode {
    fn init(config: String) -> Result<(), NodeError> {
        let config: Config = serde_json::from_str(&config)
            .map_err(|e| NodeError::InvalidConfig(format!("yolo-decode config: {e}")))?;
        if !(0.0..=1.0).contains(&config.nms_iou) || config.max_detections == 0 {
            return Err(NodeError::InvalidConfig(
                "nms_iou must be in 0..=1 and max_detections at least 1".into(),
            ));
        }
        if config.layout == Layout::Yolox && config.input_size.is_none() {
            return Err(NodeError::InvalidConfig(
                "yolox needs input_size = [w, h]".into(),
            ));
        }
        CONFIG.with(|c| *c.borrow_mut() = Some(config));
        Ok(())
    }

    fn process(inputs: Vec<Input>) -> Result<Value, NodeError> {
        CONFIG.with(|c| match c.borrow().as_ref() {
            Some(config) => run(config, &inputs).map(Value::Detections),
            None => Err(NodeError::Failed("init was not called".into())),
        })
    }
}

export!(YoloDecode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yolox_decodes_grid_offsets_and_exponential_sizes() {
        // input 16x16, stride 8 -> a 2x2 grid; one class.
        let mut data = vec![0f32; 4 * 6];
        // Anchor 3 = grid (1, 1): offset (0.5, 0.5), size exp(0) * 8 = 8, obj 0.9, cls 0.5.
        data[3 * 6..4 * 6].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 0.9, 0.5]);
        let c = decode_yolox(&data, 4, 6, [16, 16], &[8], 0.1).unwrap_or_default();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].xyxy, [8.0, 8.0, 16.0, 16.0]);
        assert!((c[0].score - 0.45).abs() < 1e-6);
        assert!(
            decode_yolox(&data, 4, 6, [32, 32], &[8], 0.1).is_err(),
            "anchor count must match"
        );
    }

    #[test]
    fn yolov8_reads_columns_and_picks_the_best_class() {
        // 2 classes, 2 anchors: rows cx, cy, w, h, c0, c1.
        let data = vec![
            10.0, 50.0, 20.0, 50.0, 4.0, 10.0, 4.0, 10.0, 0.1, 0.2, 0.8, 0.1,
        ];
        let c = decode_yolov8(&data, 6, 2, 0.25).unwrap_or_default();
        assert_eq!(
            c,
            vec![Candidate {
                class: 1,
                score: 0.8,
                xyxy: [8.0, 18.0, 12.0, 22.0]
            }]
        );
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_per_class() {
        let c = |class, score, x: f32| Candidate {
            class,
            score,
            xyxy: [x, 0.0, x + 10.0, 10.0],
        };
        let kept = nms(
            vec![
                c(0, 0.5, 1.0),
                c(0, 0.9, 0.0),
                c(1, 0.7, 0.0),
                c(0, 0.6, 50.0),
            ],
            0.45,
            false,
            10,
        );
        assert_eq!(kept, vec![c(0, 0.9, 0.0), c(1, 0.7, 0.0), c(0, 0.6, 50.0)]);
        let agnostic = nms(vec![c(0, 0.9, 0.0), c(1, 0.7, 0.0)], 0.45, true, 10);
        assert_eq!(agnostic.len(), 1);
        assert_eq!(
            nms(vec![c(0, 0.9, 0.0), c(0, 0.8, 50.0)], 0.45, false, 1).len(),
            1
        );
    }

    #[test]
    fn boxes_map_back_through_the_letterbox_and_clip() {
        // 640x480 letterboxed to 416 top-left: scale 0.65, no pad.
        let meta = [640.0, 480.0, 0.65, 0.65, 0.0, 0.0];
        let c = Candidate {
            class: 0,
            score: 1.0,
            xyxy: [65.0, 13.0, 500.0, 130.0],
        };
        assert_eq!(to_frame(&c, &meta), [100.0, 20.0, 640.0, 200.0]);
        // Centred: pad subtracted first.
        let meta = [1280.0, 720.0, 0.5, 0.5, 0.0, 140.0];
        let c = Candidate {
            class: 0,
            score: 1.0,
            xyxy: [0.0, 140.0, 10.0, 150.0],
        };
        assert_eq!(to_frame(&c, &meta), [0.0, 0.0, 20.0, 20.0]);
    }
}
