#!/usr/bin/env python3
"""`make bench`: one run that measures streamhost and RapidOCR on the same frames and machine,
and prints the ratios the targets are stated in.

    bench/.venv/bin/python bench/report.py --server 127.0.0.1:8765 [--seconds 20]

Needs a running server (scripts/with-server.sh starts one) and bench/corpus. For `ocr` and
`yolo_ocr`: per-stage mean times from the server's own histograms (the delta of
`stream_node_latency_seconds` and `stream_frame_latency_seconds` over a 1-session run), the
WebSocket end-to-end latency at 1 session, and throughput with 1, 2, 4 and 8 sessions each
sending its next frame when its reply arrives (bench/ws_bench.py). Then RapidOCR 3.10 in its
three set-ups (bench/rapid_bench.py). Writes bench/out/bench.json and prints a Markdown report.

The ratios against RapidOCR come from --pairs paired rounds after that sweep, not from the sweep
itself: a shared VM's speed drifts by 20-40% over minutes, so two numbers taken five minutes
apart compare the machine's moods as much as the two programs. Each round measures `ocr` (1
session, and the session count that was fastest in the sweep) and RapidOCR (tuned in-process,
and its best deployment) back to back, alternating which goes first; a round's ratio compares
its own two halves, and the report gives the median round with the lowest and highest.

Each round also says where a frame's core time goes while every core is busy: cores x wall /
frames on both sides, and the part inside the models by each side's own clock (ours: the onnx
nodes' histograms over the loaded run, wall time, which is CPU time for every frame that runs
its models on one thread, i.e. all but a frame found executing alone; RapidOCR's: its workers'
time inside onnxruntime's InferenceSession.run), with our server process's CPU per frame over
the same run. From these it prints the throughput ratio we would reach if everything but our
model runs cost nothing: with the same models on both sides, the ceiling of the ratio.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PY = sys.executable
MODEL_NODES = {"det", "rec", "yolo"}  # the onnx nodes of the shipped pipelines


def scrape(server):
    text = urllib.request.urlopen("http://%s/metrics" % server, timeout=30).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"(stream_(?:node|frame)_latency_seconds)_(sum|count)\{(.*)\} (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3)))
            key = (labels.get("pipeline"), labels.get("node", "*frame*"))
            out.setdefault(key, {})[m.group(2)] = float(m.group(4))
    return out


def server_cpu_seconds():
    """The server's user + system CPU seconds so far (scripts/with-server.sh exports its pid as
    STREAMHOST_SERVER_PID); None when it is not known or not readable (another machine)."""
    try:
        pid = int(os.environ["STREAMHOST_SERVER_PID"])
        fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (KeyError, ValueError, OSError, IndexError):
        return None


def stage_means(before, after, pipeline):
    means = {}
    for (p, node), v in after.items():
        if p != pipeline:
            continue
        b = before.get((p, node), {"sum": 0.0, "count": 0.0})
        n = v["count"] - b["count"]
        if n > 0:
            means[node] = 1000.0 * (v["sum"] - b["sum"]) / n
    return means


def run_json(cmd):
    print("bench: " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, check=False)
    if res.returncode not in (0, 1):
        raise SystemExit("bench: %s failed (%d)" % (cmd[1], res.returncode))
    return json.loads(res.stdout)


def ws_bench(args, pipeline, sessions):
    """bench/ws_bench.py at exactly these session counts ("1", "2,4,8"), --seconds each."""
    return run_json([PY, BENCH / "ws_bench.py", "--server", args.server, "--pipeline", pipeline,
                     "--corpus", args.corpus, "--sessions", str(sessions), "--seconds", args.seconds,
                     "--listed-only"])


def paired_rounds(args, ocr):
    """Alternating back-to-back rounds of `ocr` and RapidOCR; each round's own ratios."""
    fps = {int(n): v for n, v in ocr["throughput_fps"].items() if v}
    sessions = max(fps, key=fps.get)
    rounds = []
    for i in range(args.pairs):
        def ours():
            lat = ws_bench(args, "ocr", 1)["runs"][0]["latency_ms"]["median"]
            before, cpu0 = scrape(args.server), server_cpu_seconds()
            loaded = ws_bench(args, "ocr", sessions)["runs"][0]
            after, cpu1 = scrape(args.server), server_cpu_seconds()
            stages = stage_means(before, after, "ocr")
            model = sum(v for k, v in stages.items() if k in MODEL_NODES)
            key = ("ocr", "*frame*")
            frames = after.get(key, {}).get("count", 0) - before.get(key, {}).get("count", 0)
            cpu = (round(1000.0 * (cpu1 - cpu0) / frames, 1)
                   if frames and cpu0 is not None and cpu1 is not None else None)
            return lat, loaded["throughput_fps"], model, cpu

        def theirs():
            res = run_json([PY, BENCH / "rapid_bench.py", "--corpus", args.corpus, "--passes", "1",
                            "--seconds", args.seconds, "--only", "tuned", "--only", "best"])
            best = res["best"]
            return (res["tuned"]["latency_ms"]["median"], best["throughput_fps"],
                    best["core_ms_per_frame"], best["model_ms_per_frame"])

        if i % 2 == 0:
            (lat, fps_ours, model, cpu), (rlat, rfps, rcore, rmodel) = ours(), theirs()
        else:
            (rlat, rfps, rcore, rmodel), (lat, fps_ours, model, cpu) = theirs(), ours()
        cores = os.cpu_count() or 1
        rounds.append({"first": "ours" if i % 2 == 0 else "rapidocr", "sessions": sessions,
                       "latency_ms": lat, "rapid_tuned_latency_ms": rlat,
                       "throughput_fps": fps_ours, "rapid_best_fps": rfps,
                       "latency_vs_rapid_tuned": round(lat / rlat, 3),
                       "throughput_vs_rapid_best": round(fps_ours / rfps, 3),
                       # Where a frame's core time goes while every core is busy (ms): cores x
                       # wall / frames, and the models' share by each side's own clock (ours:
                       # the onnx nodes' histograms at `sessions` sessions, one thread a frame).
                       "core_ms_per_frame": round(1000.0 * cores / fps_ours, 1),
                       "server_cpu_ms_per_frame": cpu,
                       "model_ms_per_frame": round(model, 1),
                       "rapid_core_ms_per_frame": rcore, "rapid_model_ms_per_frame": rmodel,
                       # The throughput ratio if everything but our models cost nothing.
                       "models_only_bound_vs_rapid_best": round(1000.0 * cores / model / rfps, 3)
                       if model else None})
    return rounds


def spread(rounds, key):
    """(median, lowest, highest) of one ratio over the paired rounds."""
    v = sorted(r[key] for r in rounds)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2, v[0], v[-1]


def machine(server):
    """The CPU (lscpu's model name, and which int8 dot-product flags it has) and, per pipeline,
    which model set the server chose (its `/pipelines` `int8` entry), so every report says what
    it measured."""
    cpu, flags = "unknown", ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                cpu = value.strip()
            elif key.strip() == "Flags":
                flags = value
    except (OSError, subprocess.SubprocessError):
        pass
    vnni = ", ".join(f for f in ("avx512_vnni", "avx_vnni") if f in flags.split())
    with urllib.request.urlopen("http://%s/pipelines" % server, timeout=10) as r:
        listing = json.load(r)
    int8 = {p["id"]: p.get("int8") for p in listing["pipelines"] if p["status"] == "ready"}
    return {"cpu": cpu, "vnni": vnni, "int8": int8}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--corpus", type=Path, default=BENCH / "corpus")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sessions", default="2,4,8")
    ap.add_argument("--pipelines", default="ocr,yolo_ocr")
    ap.add_argument("--rapid-passes", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=3,
                    help="paired rounds (ours, RapidOCR back to back) the ratios come from")
    ap.add_argument("--out", type=Path, default=BENCH / "out" / "bench.json")
    args = ap.parse_args()

    report = {"pipelines": {}}
    for pipeline in args.pipelines.split(","):
        before = scrape(args.server)
        one = ws_bench(args, pipeline, 1)
        stages = stage_means(before, scrape(args.server), pipeline)
        many = ws_bench(args, pipeline, args.sessions)
        runs = one["runs"] + many["runs"]
        report["pipelines"][pipeline] = {
            "stages_ms": stages,
            "latency_1_session": one["latency_1_session"],
            "runs": runs,
            "throughput_fps": {str(r["sessions"]): r["throughput_fps"] for r in runs},
            "clean": all(r["dropped"] + r["errors"] + r["timeouts"] == 0 for r in runs),
        }
    rapid = run_json([PY, BENCH / "rapid_bench.py", "--corpus", args.corpus,
                      "--passes", args.rapid_passes, "--seconds", args.seconds])
    report["rapidocr"] = rapid
    if "ocr" in report["pipelines"] and args.pairs > 0:
        report["pairs"] = paired_rounds(args, report["pipelines"]["ocr"])

    ocr = report["pipelines"].get("ocr")
    report["machine"] = machine(args.server)
    lines = ["## Results (%s)" % ("same run, same frames, same machine"), ""]
    lines.append("CPU: %s (%d cores seen); dot-product instructions: %s." % (
        report["machine"]["cpu"], os.cpu_count() or 1, report["machine"]["vnni"] or "none"))
    for name, choice in report["machine"]["int8"].items():
        lines.append("`%s` ran %s: %s" % (name, "its int8 models" if choice and choice["runs"]
                                         else "fp32 models", (choice or {}).get("reason", "no int8 variant")))
    lines.append("")
    for name, p in report["pipelines"].items():
        st = p["stages_ms"]
        frame = st.pop("*frame*", None)
        lat = p["latency_1_session"]["median_ms"]
        lines.append("### `%s`" % name)
        lines.append("")
        lines.append("| stage | mean ms (1 session) |")
        lines.append("|---|---|")
        for node, v in sorted(st.items(), key=lambda kv: -kv[1]):
            lines.append("| %s%s | %.2f |" % (node, " (model)" if node in MODEL_NODES else "", v))
        if frame is not None:
            lines.append("| whole frame, server side | %.2f |" % frame)
        lines.append("| end to end through the WebSocket, median | %.2f |" % lat)
        lines.append("")
        lines.append("| sessions | frames/s | median ms | p90 ms | drops | errors |")
        lines.append("|---|---|---|---|---|---|")
        for r in p["runs"]:
            lines.append("| %d | %.2f | %s | %s | %d | %d |" % (r["sessions"], r["throughput_fps"] or 0,
                         r["latency_ms"]["median"], r["latency_ms"]["p90"], r["dropped"], r["errors"]))
        lines.append("")
        p["stages_ms"]["*frame*"] = frame
    lines.append("### RapidOCR 3.10 (Python, same models, onnxruntime 1.31.1)")
    lines.append("")
    lines.append("| set-up | median ms | p90 ms | frames/s |")
    lines.append("|---|---|---|---|")
    for key in ("default", "tuned"):
        r = rapid[key]
        lines.append("| %s (in-process) | %s | %s | %s |" % (key, r["latency_ms"]["median"], r["latency_ms"]["p90"], r.get("throughput_fps")))
    b = rapid["best"]
    lines.append("| best: %d single-thread worker processes (%s) | %s | %s | %s |" % (
        b["workers"], b["mode"], b["latency_ms"]["median"], b["latency_ms"]["p90"], b["throughput_fps"]))
    lines.append("")
    if ocr:
        st = ocr["stages_ms"]
        lat = ocr["latency_1_session"]["median_ms"]
        # Same population on both sides: the server's mean frame time and its mean model times.
        model = sum(v for k, v in st.items() if k in MODEL_NODES)
        frame_ms = st.get("*frame*") or 0.0
        non_model_share = (frame_ms - model) / frame_ms if frame_ms else None
        best_fps = max(v for v in ocr["throughput_fps"].values() if v)
        ratios = {
            "non_model_share_of_latency": round(non_model_share, 4),
            "latency_vs_rapid_tuned": round(lat / rapid["tuned"]["latency_ms"]["median"], 3),
            "latency_vs_rapid_default": round(lat / rapid["default"]["latency_ms"]["median"], 3),
            "throughput_vs_rapid_best": round(best_fps / b["throughput_fps"], 3),
        }
        pairs = report.get("pairs")
        if pairs:
            lines.append("### Paired rounds (`ocr` and RapidOCR back to back, alternating first)")
            lines.append("")
            lines.append("| round | first | ours 1-session median ms | RapidOCR tuned median ms | ratio | ours frames/s (%d sessions) | RapidOCR best frames/s | ratio |" % pairs[0]["sessions"])
            lines.append("|---|---|---|---|---|---|---|---|")
            for i, r in enumerate(pairs, 1):
                lines.append("| %d | %s | %s | %s | %.2fx | %.2f | %.2f | %.2fx |" % (
                    i, r["first"], r["latency_ms"], r["rapid_tuned_latency_ms"],
                    r["latency_vs_rapid_tuned"], r["throughput_fps"], r["rapid_best_fps"],
                    r["throughput_vs_rapid_best"]))
            lines.append("")
            for key in ("latency_vs_rapid_tuned", "throughput_vs_rapid_best"):
                med, lo, hi = spread(pairs, key)
                ratios["sweep_" + key] = ratios[key]
                ratios[key] = round(med, 3)
                ratios[key + "_range"] = [lo, hi]
            lines.append("Where a frame's core time goes with every core busy (ms; cores x wall / frames, "
                         "and inside the models by each side's own clock):")
            lines.append("")
            lines.append("| round | ours per frame | our server's CPU per frame | ours in the models | RapidOCR best per frame | RapidOCR in the models | ratio if our non-model work cost nothing |")
            lines.append("|---|---|---|---|---|---|---|")
            for i, r in enumerate(pairs, 1):
                bound = r["models_only_bound_vs_rapid_best"]
                lines.append("| %d | %s | %s | %s | %s | %s | %s |" % (
                    i, r["core_ms_per_frame"], r["server_cpu_ms_per_frame"] or "-",
                    r["model_ms_per_frame"], r["rapid_core_ms_per_frame"],
                    r["rapid_model_ms_per_frame"], "%.2fx" % bound if bound else "-"))
            lines.append("")
            bounds = [r for r in pairs if r["models_only_bound_vs_rapid_best"]]
            if bounds:
                med, lo, hi = spread(bounds, "models_only_bound_vs_rapid_best")
                ratios["models_only_bound_vs_rapid_best"] = round(med, 3)
                ratios["models_only_bound_vs_rapid_best_range"] = [lo, hi]
        report["ratios"] = ratios
        source = "median of %d paired rounds (lowest-highest)" % len(pairs) if pairs else "the sweep above"

        def shown(key):
            rng = ratios.get(key + "_range")
            return "%.2fx" % ratios[key] + (" (%.2f-%.2f)" % tuple(rng) if rng else "")

        lines.append("### Ratios (`ocr`; against RapidOCR: %s)" % source)
        lines.append("")
        lines.append("| measure | value | target |")
        lines.append("|---|---|---|")
        lines.append("| everything but model inference, share of the server-side frame time (1 session) | %.1f%% | at most 5%% |" % (100 * ratios["non_model_share_of_latency"]))
        lines.append("| median latency (WebSocket hop included) / RapidOCR tuned in-process | %s | at most 0.8x |" % shown("latency_vs_rapid_tuned"))
        lines.append("| median latency / RapidOCR defaults (sweep) | %.2fx | |" % ratios["latency_vs_rapid_default"])
        lines.append("| best throughput / RapidOCR best deployment | %s | at least 1.5x |" % shown("throughput_vs_rapid_best"))
        if "models_only_bound_vs_rapid_best" in ratios:
            lines.append("| the same if our non-model work cost nothing (models' core time alone) | %s | |" % shown("models_only_bound_vs_rapid_best"))
        lines.append("")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    (args.out.parent / "bench.md").write_text(text + "\n")
    print("\nwrote %s and %s" % (args.out, args.out.parent / "bench.md"), file=sys.stderr)


if __name__ == "__main__":
    main()
