#!/usr/bin/env python3
"""Time RapidOCR 3.10 on the corpus in three set-ups; prints JSON to stdout.

    bench/.venv/bin/python bench/rapid_bench.py --corpus bench/corpus [--passes 3] [--seconds 20]

  default  RapidOCR's defaults, one engine in-process (onnxruntime's own thread count: all
           cores); per-frame latency (JPEG bytes in, lines out) over --passes passes of the
           corpus after --warmup passes.
  tuned    the same with the angle classifier off and the detector's long side capped at 640.
  best     the best CPU deployment of RapidOCR for throughput: --workers processes (default:
           one per core), each with its own engine in --best-mode (tuned) and onnxruntime
           intra_op_num_threads=1, inter_op_num_threads=1, all pulling corpus frames for
           --seconds after a warm-up; frames/s over the wall time.
Latencies in ms; stage times are RapidOCR's own det/cls/rec elapse per frame (pre- and
post-processing included). For `best` also core_ms_per_frame (workers x wall / frames: what a
frame costs one core while all workers run) and model_ms_per_frame (time inside onnxruntime's
InferenceSession.run per frame: the models alone, on one thread).
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import percentile as pct  # noqa: E402

BENCH = Path(__file__).resolve().parent


def ms(x):
    return None if x is None else round(1000.0 * x, 1)


def load_frames(corpus):
    corpus, truth = benchlib.load_truth(corpus)
    return [(f["file"], "%dx%d" % (f["width"], f["height"]), (corpus / f["file"]).read_bytes())
            for f in truth["frames"]]


def time_in_process(mode, frames, passes, warmup, threads):
    engine = benchlib.make_engine(mode, threads)
    for _ in range(warmup):
        for _, _, data in frames:
            engine(data)
    lat, by_size, stages = [], {}, {"det": [], "cls": [], "rec": []}
    t_start = time.perf_counter()
    for _ in range(passes):
        for _, size, data in frames:
            t0 = time.perf_counter()
            res = engine(data)
            dt = time.perf_counter() - t0
            lat.append(dt)
            by_size.setdefault(size, []).append(dt)
            for name, v in zip(("det", "cls", "rec"), getattr(res, "elapse_list", []) or []):
                if isinstance(v, float):
                    stages[name].append(v)
    wall = time.perf_counter() - t_start
    return {
        "params": {k: (v.value if hasattr(v, "value") else v)
                   for k, v in benchlib.rapid_params(mode, threads).items() if "path" not in k},
        "frames_timed": len(lat),
        "latency_ms": {"median": ms(statistics.median(lat)), "p90": ms(pct(lat, 90)),
                       "mean": ms(statistics.fmean(lat))},
        "latency_ms_by_size": {s: {"median": ms(statistics.median(v)), "p90": ms(pct(v, 90))}
                               for s, v in sorted(by_size.items())},
        "stage_ms_median": {k: ms(statistics.median(v)) for k, v in stages.items() if v},
        "throughput_fps": round(len(lat) / wall, 2),
    }


def _worker(wid, workers, mode, frames, start_evt, ready_q, deadline_box, out_q):
    clock = benchlib.ModelClock()
    engine = benchlib.make_engine(mode, threads=1)
    for _, _, data in frames:  # warm-up: one pass
        engine(data)
    ready_q.put(wid)
    start_evt.wait()
    deadline = deadline_box.value
    n, i, lat = 0, (wid * len(frames)) // workers, []
    clock.take()
    while time.time() < deadline:
        t0 = time.perf_counter()
        engine(frames[i % len(frames)][2])
        lat.append(time.perf_counter() - t0)
        n += 1
        i += 1
    out_q.put((wid, n, time.time(), lat, clock.take()))


def time_workers(mode, frames, workers, seconds):
    ctx = mp.get_context("fork")
    start_evt, ready_q, out_q = ctx.Event(), ctx.Queue(), ctx.Queue()
    deadline_box = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_worker, args=(w, workers, mode, frames, start_evt, ready_q,
                                               deadline_box, out_q), daemon=True)
             for w in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready_q.get(timeout=600)
    t0 = time.time()
    deadline_box.value = t0 + seconds
    start_evt.set()
    results = [out_q.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    total = sum(r[1] for r in results)
    wall = max(r[2] for r in results) - t0
    lat = [x for r in results for x in r[3]]
    model = sum(r[4] for r in results)
    return {
        "mode": mode, "workers": workers, "onnxruntime_threads_per_worker": 1,
        "seconds": round(wall, 2), "frames": total,
        "throughput_fps": round(total / wall, 2),
        # workers x wall / frames: what one frame costs a core while every worker runs.
        "core_ms_per_frame": ms(workers * wall / total) if total else None,
        # time inside onnxruntime's run() per frame (the models, on one thread each).
        "model_ms_per_frame": ms(model / total) if total else None,
        "latency_ms": {"median": ms(statistics.median(lat)) if lat else None,
                       "p90": ms(pct(lat, 90))},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--corpus", type=Path, default=BENCH / "corpus")
    ap.add_argument("--passes", type=int, default=3, help="timed passes over the corpus")
    ap.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the 'best' run")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--best-mode", choices=sorted(benchlib.MODES), default="tuned")
    ap.add_argument("--threads", type=int, default=None,
                    help="onnxruntime threads for the in-process runs (default: its own)")
    ap.add_argument("--only", choices=["default", "tuned", "best"], action="append",
                    help="run only these set-ups (repeatable)")
    args = ap.parse_args()

    import onnxruntime
    import rapidocr._version as rv

    benchlib.check_models()
    frames = load_frames(args.corpus)
    only = set(args.only or ["default", "tuned", "best"])
    out = {
        "rapidocr": getattr(rv, "__version__", getattr(rv, "version", "?")),
        "onnxruntime": onnxruntime.__version__, "cpu_count": os.cpu_count(),
        "corpus": str(args.corpus), "frames": len(frames),
        "passes": args.passes, "warmup": args.warmup,
    }
    for mode in ("default", "tuned"):
        if mode in only:
            print("rapid_bench: %s ..." % mode, file=sys.stderr, flush=True)
            out[mode] = time_in_process(mode, frames, args.passes, args.warmup, args.threads)
    if "best" in only:
        print("rapid_bench: best (%d workers x 1 thread, %s) ..." % (args.workers, args.best_mode),
              file=sys.stderr, flush=True)
        out["best"] = time_workers(args.best_mode, frames, args.workers, args.seconds)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
