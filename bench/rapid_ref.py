#!/usr/bin/env python3
"""Run RapidOCR 3.10 (PP-OCRv6 det/rec small) on every corpus frame and write its lines.

    bench/.venv/bin/python bench/rapid_ref.py bench/corpus bench/out/ref_default.json
    bench/.venv/bin/python bench/rapid_ref.py bench/corpus bench/out/ref_tuned.json --mode tuned

Output: {"f000.jpg": [{"text": ..., "score": ..., "box": [[x,y] x4, clockwise from top-left]}]}
in RapidOCR's own order. The frames are passed as JPEG bytes, as a client sends them.
--check-truth also prints how many rendered lines (truth.json) RapidOCR read exactly and exits
non-zero unless it read all of them.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out_json", type=Path)
    ap.add_argument("--mode", choices=sorted(benchlib.MODES), default="default")
    ap.add_argument("--threads", type=int, default=None,
                    help="onnxruntime intra/inter-op threads (default: onnxruntime's own)")
    ap.add_argument("--check-truth", action="store_true")
    args = ap.parse_args()

    benchlib.check_models()
    corpus, truth = benchlib.load_truth(args.corpus)
    engine = benchlib.make_engine(args.mode, args.threads)
    out = {}
    t0 = time.perf_counter()
    for f in truth["frames"]:
        out[f["file"]] = benchlib.run_engine(engine, (corpus / f["file"]).read_bytes())
    dt = time.perf_counter() - t0
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(out, indent=1) + "\n")
    n = sum(len(v) for v in out.values())
    print("%s: mode=%s, %d frames, %d lines, %.1f s" % (args.out_json, args.mode, len(out), n, dt),
          file=sys.stderr)

    if args.check_truth:
        rep = benchlib.truth_report(truth, out)
        want = sum(r["lines"] for r in rep)
        missed = [(r["file"], m) for r in rep for m in r["misses"]]
        fp = sum(r["n_pred"] for r in rep if r["lines"] == 0)
        print("truth: %d/%d rendered lines read exactly; %d lines on no-text frames"
              % (want - len(missed), want, fp))
        for frame, m in missed:
            print("  %s: want %r got %r" % (frame, m["want"], m["got"]))
        if missed:
            sys.exit(1)


if __name__ == "__main__":
    main()
