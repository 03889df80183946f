#!/usr/bin/env python3
"""Derive the int8 text detector from the fp32 one that fetch-models.sh checked.

    .deps/quant-venv/bin/python scripts/quantize-models.py MODEL_DIR CALIB_DIR

Why: the DB detector is three quarters of an `ocr` frame. Static int8 quantisation (QDQ format,
per-channel int8 weights, uint8 activations with MinMax ranges) lets ONNX Runtime run its convs
on the CPU's integer dot-product units, about 3x faster with AVX-512 VNNI. Whether the result is
exact enough to serve is not decided here: the server's int8 gate (host/src/pipeline/int8_gate.rs)
runs the pipeline with and without this model on held-out frames, on the CPU it runs on, and
serves int8 only if every line reads the same and every box stays within 2 px. On the 2-vCPU
AMD EPYC with AVX-512 VNNI of session 15 no recipe tried passed it (BENCHMARKS.md "Session 15":
MinMax on 39 or 108 frames, percentile and entropy ranges, only the backbone or only its middle
quantised, bench/int8_sensitivity.py's per-layer ranking): every one moved some boxes by 3-10 px
and changed a reading on one frame in forty, so there the fp32 detector serves.
The DB head (every node downstream of the neck's last Concat: a conv, two transposed convs and
the sigmoid that make the full-resolution map) stays fp32: it costs nothing measurable and keeps
the map's values near the 0.3 threshold closer; quantising it too made a busy no-text frame
(tests/golden/f037.jpg) report a junk line. The recogniser stays fp32: int8 turned two of 90
corpus lines into misreads ("0rder", a lost space) for almost no time saved.

Calibration frames come from bench/make_corpus.py with a seed of their own (not the accuracy
corpus's, not the gate's) and procedural backgrounds only, so they are the same on every machine;
the example frame (f000, also in the accuracy corpus) is left out. 108 frames, not 39: the ranges
MinMax takes are extremes, and more varied frames make them less a matter of chance. Activation
ranges are all calibration learns: it fits no weights.

Writes MODEL_DIR/PP-OCRv6_det_small.int8.onnx (atomically: a .part file renamed at the end).
"""

import glob
import os
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import version_converter
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

SOURCE = "PP-OCRv6_det_small.onnx"
TARGET = "PP-OCRv6_det_small.int8.onnx"
DEGRADED = os.path.join("test", "PP-OCRv6_det_small.degraded.int8.onnx")
# Per-channel DequantizeLinear (its `axis`) needs opset 13; the shipped model is opset 11.
OPSET = 17
# The `ocr` manifest's detector input: long side capped at 640, both sides multiples of 32.
LIMIT_SIDE = 640


def detector_input(path):
    """One frame as the `ocr` pipeline's det_pre node feeds it: BGR, (x/255 - 0.5)/0.5, NCHW."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    ratio = min(1.0, LIMIT_SIDE / max(w, h))
    nw = max(32, int(round(w * ratio / 32)) * 32)
    nh = max(32, int(round(h * ratio / 32)) * 32)
    pixels = np.asarray(image.resize((nw, nh), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]
    pixels = (pixels / 255.0 - 0.5) / 0.5
    return pixels.transpose(2, 0, 1)[None].copy()


class Frames(CalibrationDataReader):
    def __init__(self, files):
        self.files = iter(files)

    def get_next(self):
        path = next(self.files, None)
        return None if path is None else {"x": detector_input(path)}


def head_nodes(model):
    """Names of the nodes downstream of the graph's last Concat (the DB head)."""
    nodes = list(model.graph.node)
    concats = [n for n in nodes if n.op_type == "Concat"]
    if not concats:
        sys.exit("quantize-models: no Concat in the detector; is it still the DB model?")
    frontier, head = set(concats[-1].output), []
    for node in nodes:  # graph order is topological
        if frontier.intersection(node.input):
            head.append(node.name)
            frontier.update(node.output)
    if not any(n.op_type == "ConvTranspose" for n in nodes if n.name in head):
        sys.exit("quantize-models: the DB head was not found after the last Concat")
    return head


def calibration_files(calib_dir):
    files = sorted(f for f in glob.glob(os.path.join(calib_dir, "f*.jpg"))
                   if not f.endswith("f000.jpg"))
    if len(files) < 20:
        sys.exit(f"quantize-models: only {len(files)} calibration frames in {calib_dir}")
    return files


def prepare(source, prepared):
    """The fp32 model as quantisation sees it: opset upgraded, constants folded, Conv+BN fused."""
    with tempfile.TemporaryDirectory() as tmp:
        upgraded = os.path.join(tmp, "opset.onnx")
        onnx.save(version_converter.convert_version(onnx.load(source), OPSET), upgraded)
        # The symbolic shape pass needs sympy and gains nothing on a fully convolutional model.
        quant_pre_process(upgraded, prepared, skip_symbolic_shape=True)


def extra_options(method):
    return {"CalibPercentile": 99.999} if method == "Percentile" else {}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model_dir, calib_dir = sys.argv[1], sys.argv[2]
    files = calibration_files(calib_dir)
    target = os.path.join(model_dir, TARGET)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        prepare(os.path.join(model_dir, SOURCE), prepared)
        quantize_static(prepared, target + ".part", Frames(files), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=head_nodes(onnx.load(prepared)))
    os.replace(target + ".part", target)
    print(f"quantize-models: wrote {TARGET} ({len(files)} calibration frames)", file=sys.stderr)
    write_degraded(target, os.path.join(model_dir, DEGRADED))


def write_degraded(source, target):
    """The int8 model with the first Conv's weight scales raised by a quarter: a plausible
    quantisation mistake (a wrong scale) that the int8 gate must refuse (tests/e2e/ocr.rs)."""
    model = onnx.load(source)
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    dq = producers.get(conv.input[1])
    if dq is None or dq.op_type != "DequantizeLinear" or dq.input[1] not in inits:
        sys.exit("quantize-models: the first Conv's weights are not dequantised from an initializer")
    scale = inits[dq.input[1]]
    values = onnx.numpy_helper.to_array(scale) * np.float32(1.25)
    scale.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float32), scale.name))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    onnx.save(model, target + ".part")
    os.replace(target + ".part", target)
    print(f"quantize-models: wrote {os.path.relpath(target, os.path.dirname(os.path.dirname(target)))} "
          "(deliberately degraded, for the gate's tests)", file=sys.stderr)


if __name__ == "__main__":
    main()
