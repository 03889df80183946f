"""Shared helpers for the bench scripts: RapidOCR set-up, corpus loading, line matching.

RapidOCR is imported lazily so compare.py and ws_bench.py run without it.
"""

import hashlib
import json
import re
import time
from pathlib import Path

# sha256 of the models inside rapidocr==3.10.0 (see shared/notes/models.md).
MODEL_SHA256 = {
    "PP-OCRv6_det_small.onnx": "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    "PP-OCRv6_rec_small.onnx": "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    "ch_ppocr_mobile_v2.0_cls_mobile.onnx": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
}

# RapidOCR 3.10 parameters (keys of rapidocr/config.yaml) for each mode.
# default: the package's config.yaml as shipped (Det.limit_type "min", Det.limit_side_len 736:
#   short side scaled to 736; Global.use_cls true), with the models named explicitly.
# tuned: angle classifier off and the detector's long side capped at 640 (no upscaling).
MODES = {
    "default": {},
    "tuned": {
        "Global.use_cls": False,
        "Det.limit_type": "max",
        "Det.limit_side_len": 640,
    },
}


def rapid_params(mode, threads=None):
    """The params dict for RapidOCR(params=...) in a mode; threads sets onnxruntime's
    intra_op_num_threads and inter_op_num_threads (None: onnxruntime's default, all cores)."""
    import rapidocr
    from rapidocr import ModelType, OCRVersion

    models = Path(rapidocr.__file__).resolve().parent / "models"
    params = {
        "Global.log_level": "error",
        "Det.ocr_version": OCRVersion.PPOCRV6,
        "Det.model_type": ModelType.SMALL,
        "Det.model_path": str(models / "PP-OCRv6_det_small.onnx"),
        "Rec.ocr_version": OCRVersion.PPOCRV6,
        "Rec.model_type": ModelType.SMALL,
        "Rec.model_path": str(models / "PP-OCRv6_rec_small.onnx"),
        "Cls.model_path": str(models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
    }
    params.update(MODES[mode])
    if threads is not None:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
        params["EngineConfig.onnxruntime.inter_op_num_threads"] = int(threads)
    return params


def check_models():
    import rapidocr

    models = Path(rapidocr.__file__).resolve().parent / "models"
    for name, want in MODEL_SHA256.items():
        got = hashlib.sha256((models / name).read_bytes()).hexdigest()
        if got != want:
            raise SystemExit("%s: sha256 %s, expected %s" % (models / name, got, want))


def make_engine(mode, threads=None):
    from rapidocr import RapidOCR

    return RapidOCR(params=rapid_params(mode, threads))


class ModelClock:
    """Seconds spent inside onnxruntime's `InferenceSession.run`, in this process, since the
    last `take()`. RapidOCR's own stage timers include its pre- and post-processing; this
    times the model runs alone, which is what the two programs share."""

    def __init__(self):
        import onnxruntime

        self.seconds = 0.0
        run = onnxruntime.InferenceSession.run
        clock = self

        def timed_run(session, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return run(session, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0

        onnxruntime.InferenceSession.run = timed_run

    def take(self):
        s, self.seconds = self.seconds, 0.0
        return s


def _num(v):
    v = float(v)
    return int(v) if v.is_integer() else round(v, 2)


def run_engine(engine, jpeg_bytes):
    """RapidOCR on JPEG bytes (decoded by Pillow, as RapidOCR does) -> contract-shaped lines."""
    res = engine(jpeg_bytes)
    if res.txts is None or res.boxes is None:
        return []
    return [
        {"text": t, "score": round(float(s), 5), "box": [[_num(x), _num(y)] for x, y in b]}
        for t, s, b in zip(res.txts, res.scores, res.boxes.tolist())
    ]


def percentile(values, p):
    """The p-th percentile (0-100) of values, linearly interpolated; None when empty."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def load_truth(corpus):
    corpus = Path(corpus)
    truth = json.loads((corpus / "truth.json").read_text())
    return corpus, truth


def norm_text(s):
    return re.sub(r"\s+", " ", s).strip()


def hull(box):
    """Axis-aligned hull [x1, y1, x2, y2] of a 4-point box or of an [x1, y1, x2, y2] box."""
    if len(box) == 4 and not isinstance(box[0], (list, tuple)):
        return [float(v) for v in box]
    xs = [float(p[0]) for p in box]
    ys = [float(p[1]) for p in box]
    return [min(xs), min(ys), max(xs), max(ys)]


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_lines(ref, ours, thresh=0.3):
    """Greedy one-to-one matching of two line lists by hull IoU (> thresh), best pairs first.
    Returns [(ref_index, our_index or None, iou)] for every ref line."""
    pairs = []
    for i, r in enumerate(ref):
        hr = hull(r["box"])
        for j, o in enumerate(ours):
            v = iou(hr, hull(o["box"]))
            if v > thresh:
                pairs.append((v, i, j))
    pairs.sort(key=lambda p: -p[0])
    used_r, used_o, out = set(), set(), {}
    for v, i, j in pairs:
        if i in used_r or j in used_o:
            continue
        used_r.add(i)
        used_o.add(j)
        out[i] = (j, v)
    return [(i, out.get(i, (None, 0.0))[0], out.get(i, (None, 0.0))[1]) for i in range(len(ref))]


def read_truth_line(truth_line, pred, thresh=0.3):
    """What pred read for one rendered line: the predicted lines whose hull centre lies in the
    rendered line's box (grown by half its height), left to right, joined by a space (a detector
    may split one rendered line in two). Falls back to the single best-IoU line."""
    x1, y1, x2, y2 = hull(truth_line["box"])
    m = 0.5 * (y2 - y1)
    inside = []
    for p in pred:
        h = hull(p["box"])
        cx, cy = (h[0] + h[2]) / 2, (h[1] + h[3]) / 2
        if x1 - m <= cx <= x2 + m and y1 - m <= cy <= y2 + m:
            inside.append((h[0], p["text"]))
    if inside:
        return norm_text(" ".join(t for _, t in sorted(inside)))
    best = max(pred, key=lambda p: iou(hull(p["box"]), [x1, y1, x2, y2]), default=None)
    if best is not None and iou(hull(best["box"]), [x1, y1, x2, y2]) > thresh:
        return norm_text(best["text"])
    return None


def truth_report(truth, preds):
    """Per frame: rendered lines read exactly (after whitespace normalisation) by preds."""
    frames = []
    for f in truth["frames"]:
        pred = preds.get(f["file"], [])
        misses = []
        for line in f["lines"]:
            got = read_truth_line(line, pred)
            if got != norm_text(line["text"]):
                misses.append({"want": line["text"], "got": got})
        frames.append({"file": f["file"], "lines": len(f["lines"]), "misses": misses,
                       "ok": not misses, "n_pred": len(pred)})
    return frames


def ref_report(ref, preds, thresh=0.3):
    """How many of ref's lines (RapidOCR's) preds matches: box IoU > thresh, then exact text."""
    total = matched_box = matched_text = 0
    diffs, ious = [], []
    for frame, rlines in ref.items():
        plines = preds.get(frame, [])
        for i, j, v in match_lines(rlines, plines, thresh):
            total += 1
            if j is None:
                diffs.append({"frame": frame, "ref": rlines[i]["text"], "ours": None})
                continue
            matched_box += 1
            ious.append(v)
            if norm_text(rlines[i]["text"]) == norm_text(plines[j]["text"]):
                matched_text += 1
            else:
                diffs.append({"frame": frame, "ref": rlines[i]["text"],
                              "ours": plines[j]["text"], "iou": round(v, 3)})
    return {"ref_lines": total, "box_matched": matched_box, "text_matched": matched_text,
            "pct": 100.0 * matched_text / total if total else 100.0,
            "box_iou_mean": sum(ious) / len(ious) if ious else 0.0, "diffs": diffs}
