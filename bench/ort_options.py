#!/usr/bin/env python3
"""ONNX Runtime session options against the default, on the models the `ocr` pipeline runs.

    bench/.venv/bin/python bench/ort_options.py [--runs 15] [--corpus bench/corpus] [--models models]

One intra-op thread, as a frame gets under load. The detector takes the first corpus frame
at 640x480 (BGR, (x/255 - 0.5) / 0.5, as det_pre), the recogniser a fixed random 48x240 crop.
Each variant's output is compared with the default's (max abs difference), then every variant
runs once per round, in turn, for --runs rounds; medians and minima in ms. Also: memory patterns
on/off for the recogniser over 180 widths it has not seen, then over 40 it has. A look-up for
model time at equal outputs (BENCHMARKS.md "Session 13"), not part of `make bench`.
"""

import argparse
import os
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ALL = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
VARIANTS = {
    "default (ORT_ENABLE_ALL)": dict(level=ALL),
    "ORT_ENABLE_EXTENDED": dict(level=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
    "ALL without NchwcTransformer": dict(level=ALL, disabled=["NchwcTransformer"]),
    "ALL, CPU memory arena off": dict(level=ALL, arena=False),
}


def session(model, level=ALL, disabled=None, arena=True, mem_pattern=True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = level
    so.enable_cpu_mem_arena = arena
    so.enable_mem_pattern = mem_pattern
    kw = {"disabled_optimizers": disabled} if disabled else {}
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"], **kw)


def timed(s, x):
    start = time.perf_counter()
    s.run(None, {s.get_inputs()[0].name: x})
    return time.perf_counter() - start


def compare(name, model, x, runs):
    sessions = {k: session(model, **v) for k, v in VARIANTS.items()}
    ref = None
    for k, s in sessions.items():
        out = s.run(None, {s.get_inputs()[0].name: x})[0]
        ref = out if ref is None else ref
        print(f"{name:4} {k:30} max diff {float(np.abs(out - ref).max()):.2g}")
    times = {k: [] for k in sessions}
    for _ in range(runs):
        for k, s in sessions.items():
            times[k].append(timed(s, x))
    for k, t in times.items():
        print(f"{name:4} {k:30} median {1e3 * np.median(t):7.1f} ms  min {1e3 * min(t):7.1f} ms")


def mem_patterns(model):
    """Rounds alternate which session goes first; per round, seconds for all its crops."""
    rs = np.random.RandomState(0)
    s = {on: session(model, mem_pattern=on) for on in (True, False)}
    widths = rs.randint(60, 400, 180)
    crops = [rs.uniform(-1, 1, (1, 3, 48, int(w))).astype(np.float32) for w in widths]
    # Three rounds of 60 crops each seen for the first time, then five over 40 seen already.
    rounds = [crops[i:i + 60] for i in range(0, 180, 60)] + [crops[:40]] * 5
    t = {True: [], False: []}
    for r, batch in enumerate(rounds):
        for on in (True, False) if r % 2 == 0 else (False, True):
            t[on].append(sum(timed(s[on], x) for x in batch))
    for label, part in (("unseen widths", slice(0, 3)), ("seen widths", slice(3, None))):
        print(f"rec  memory patterns, {label}: on "
              + " ".join(f"{v:.2f}" for v in t[True][part]) + " s; off "
              + " ".join(f"{v:.2f}" for v in t[False][part]) + " s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--corpus", default="bench/corpus")
    ap.add_argument("--models", default="models")
    a = ap.parse_args()
    first = sorted(f for f in os.listdir(a.corpus) if f.endswith(".jpg"))[0]
    img = Image.open(os.path.join(a.corpus, first)).convert("RGB").resize((640, 480))
    det = np.asarray(img)[:, :, ::-1].astype(np.float32) / 255.0
    det = ((det - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()
    rec = np.random.RandomState(0).uniform(-1, 1, (1, 3, 48, 240)).astype(np.float32)
    compare("det", os.path.join(a.models, "PP-OCRv6_det_small.onnx"), det, a.runs)
    rec_model = os.path.join(a.models, "PP-OCRv6_rec_small.onnx")
    compare("rec", rec_model, rec, a.runs)
    mem_patterns(rec_model)


if __name__ == "__main__":
    main()
