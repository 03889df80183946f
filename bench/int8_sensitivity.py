#!/usr/bin/env python3
"""How far quantising each layer of the text detector moves its probability map (issue 16).

    .deps/quant-venv/bin/python bench/int8_sensitivity.py MODEL_DIR CALIB_DIR HELD_DIR [--method M]

Why: the static int8 recipe that once read the same lines as fp32 stopped doing so after its
derivation changed (`Total: $18.40` read as `Total:$18.40` on a VNNI Xeon). A DB detector's boxes
come from thresholding its map at 0.3 and growing each region; a layer whose rounding moves many
pixels across that threshold moves box edges, and a box edge that moves by a few pixels can eat
the space between two words. So each layer is judged by what it does to the thresholded map, on
held-out frames (never the accuracy corpus, never the calibration frames):

  1. calibrate once (ranges cached), then quantise one Conv at a time, everything else fp32, and
     count the held-out map pixels whose side of 0.3 changes against fp32 ("flips");
  2. quantise everything but the head and exclude layers greedily, most sensitive first, printing
     the flips and the run time of each candidate, so the fewest fp32 layers that make the map
     agree can be read off.

The list chosen from this run is `SENSITIVE` in scripts/quantize-models.py; BENCHMARKS.md
("Session 15") has the numbers. Run on a CPU with VNNI: without it the int8 kernels differ.
"""

import argparse
import glob
import importlib.util
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "quantize_models", os.path.join(HERE, "..", "scripts", "quantize-models.py"))
qm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qm)

THRESH = 0.3


def session(path, threads=2):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def maps(sess, inputs):
    return [sess.run(None, {"x": x})[0] for x in inputs]


def compare(ref, got):
    flips = sum(int(np.count_nonzero((a > THRESH) != (b > THRESH))) for a, b in zip(ref, got))
    worst = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    mean = float(np.mean([np.abs(a - b).mean() for a, b in zip(ref, got)]))
    return flips, worst, mean


def timed(sess, inputs, reps=1):
    t = time.perf_counter()
    for _ in range(reps):
        for x in inputs:
            sess.run(None, {"x": x})
    return (time.perf_counter() - t) / (reps * len(inputs)) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("calib_dir")
    ap.add_argument("held_dir")
    ap.add_argument("--method", default="MinMax", choices=["MinMax", "Percentile", "Entropy"])
    ap.add_argument("--single", action="store_true", help="also quantise each Conv alone")
    ap.add_argument("--greedy", type=int, default=24, help="how many layers to exclude at most")
    ap.add_argument("--out", default="/tmp/int8_sensitivity.json")
    args = ap.parse_args()

    calib = qm.calibration_files(args.calib_dir)
    held = sorted(glob.glob(os.path.join(args.held_dir, "f*.jpg")))
    held_inputs = [qm.detector_input(f) for f in held]
    tmp = tempfile.mkdtemp(prefix="int8sens-")
    prepared = os.path.join(tmp, "prepared.onnx")
    qm.prepare(os.path.join(args.model_dir, qm.SOURCE), prepared)
    model = onnx.load(prepared)
    head = set(qm.head_nodes(model))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in head]
    ref = maps(session(prepared), held_inputs)
    print(f"{len(held)} held-out frames, {len(calib)} calibration frames, {len(convs)} convs "
          f"outside the head, method {args.method}", flush=True)
    cache = os.path.join(tmp, "ranges")
    method = getattr(CalibrationMethod, args.method)

    def quantise(exclude, out):
        quantize_static(prepared, out, qm.Frames(calib), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=method,
                        nodes_to_exclude=sorted(exclude), calibration_cache_path=cache,
                        extra_options=qm.extra_options(args.method))
        return out

    report = {"method": args.method, "frames": len(held)}
    full = quantise(head, os.path.join(tmp, "full.onnx"))
    s = session(full)
    report["full"] = compare(ref, maps(s, held_inputs))
    print("all but head:", report["full"], flush=True)

    # Sensitivity of each layer when it is the only thing quantised.
    single = {}
    if args.single:
        everything = set(n.name for n in model.graph.node)
        for name in convs:
            out = quantise(everything - {name}, os.path.join(tmp, "one.onnx"))
            single[name] = compare(ref, maps(session(out), held_inputs))
            print("alone", name, single[name], flush=True)
        report["single"] = single

    # Greedy: exclude the layer whose exclusion removes the most flips, one at a time. Each step
    # tries the 8 most sensitive remaining layers (by the single ranking when there is one).
    order = sorted(convs, key=lambda n: -single[n][0]) if single else list(convs)
    excluded, steps = set(head), []
    flips = report["full"][0]
    for _ in range(args.greedy):
        if flips == 0:
            break
        remaining = [n for n in order if n not in excluded]
        candidates = remaining[:8] if single else remaining
        best = None
        for name in candidates:
            out = quantise(excluded | {name}, os.path.join(tmp, "cand.onnx"))
            c = compare(ref, maps(session(out), held_inputs))
            if best is None or c[0] < best[1][0]:
                best = (name, c)
        excluded.add(best[0])
        flips = best[1][0]
        out = quantise(excluded, os.path.join(tmp, "step.onnx"))
        ms = timed(session(out), held_inputs[:10])
        steps.append({"exclude": best[0], "cmp": best[1], "ms": ms})
        print("exclude", best[0], best[1], f"{ms:.1f} ms", flush=True)
    report["greedy"] = steps
    report["fp32_ms"] = timed(session(prepared), held_inputs[:10])
    report["full_ms"] = timed(session(full), held_inputs[:10])
    print("fp32 %.1f ms, all-int8 %.1f ms" % (report["fp32_ms"], report["full_ms"]))
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
