#!/usr/bin/env python3
"""Compare our server's OCR with the corpus truth and with RapidOCR's reference output.

    bench/.venv/bin/python bench/compare.py --server 127.0.0.1:8000 --corpus bench/corpus \\
        --ref bench/out/ref_tuned.json [--ref bench/out/ref_default.json] [--pipeline ocr]

Streams every corpus frame over ws://HOST:PORT/ws/video/stream?pipeline_id=P, one at a time
(the next frame only after the previous reply), and takes the lines of result.text (both `ocr`
and `yolo_ocr` replies carry them). --pred FILE reads lines from a JSON file shaped like
rapid_ref.py's output instead of a server (e.g. to compare RapidOCR's two modes).

Checks (exit status 1 if one fails):
  ref    for each --ref: RapidOCR's lines matched by ours, box hull IoU > 0.3 then exact text
         after whitespace normalisation, at least --target percent (95)
  truth  every rendered line of every frame with text read exactly, by us and by each --ref
         (a rendered line is read as the predicted lines centred in its box, left to right)
  fp     on frames without text: no more lines from us than from the reference (0 in practice)
  wire   every frame answered with a result (no drops, no errors)
Writes bench/out/accuracy.json (--out) with the per-frame details.
"""

import argparse
import json
import urllib.request
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPLY_TIMEOUT = 60.0


def stream_corpus(args, corpus, truth):
    from websockets.sync.client import connect

    uri = "ws://%s/ws/video/stream?%s" % (args.server, urlencode({"pipeline_id": args.pipeline}))
    headers = {"Authorization": "Bearer " + args.token} if args.token else None
    preds, wire, lat = {}, {"dropped": 0, "errors": [], "warnings": 0, "bad": []}, []
    with connect(uri, max_size=None, compression=None, proxy=None, additional_headers=headers,
                 open_timeout=10, close_timeout=5) as ws:
        for f in truth["frames"]:
            data = (corpus / f["file"]).read_bytes()
            t0 = time.perf_counter()
            ws.send(data)
            while True:
                msg = ws.recv(timeout=REPLY_TIMEOUT)
                reply = json.loads(msg)
                if reply.get("warning"):
                    wire["warnings"] += 1
                    continue
                break
            lat.append(time.perf_counter() - t0)
            if reply.get("dropped"):
                wire["dropped"] += 1
                preds[f["file"]] = []
            elif "error" in reply:
                wire["errors"].append({"frame": f["file"], "reply": reply})
                preds[f["file"]] = []
                if "frame_index" not in reply:
                    break  # session-level error: the server closes
            else:
                lines, problem = parse_text(reply)
                if problem:
                    wire["bad"].append({"frame": f["file"], "problem": problem})
                preds[f["file"]] = lines
    return preds, wire, lat


def parse_text(reply):
    """Lines of a result reply, and a description of any contract violation."""
    result = reply.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("text"), list):
        return [], "no result.text list"
    lines = []
    for item in result["text"]:
        box = item.get("box") if isinstance(item, dict) else None
        ok = (isinstance(box, list) and len(box) == 4
              and all(isinstance(p, list) and len(p) == 2 for p in box)
              and isinstance(item.get("text"), str) and isinstance(item.get("score"), (int, float)))
        if not ok:
            return lines, "malformed line %r" % (item,)
        lines.append({"text": item["text"], "score": item["score"], "box": box})
    return lines, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--server", metavar="HOST:PORT")
    src.add_argument("--pred", type=Path, help="lines from a JSON file instead of a server")
    ap.add_argument("--corpus", type=Path, default=BENCH / "corpus")
    ap.add_argument("--pipeline", default="ocr")
    ap.add_argument("--token", help="bearer token for the server")
    ap.add_argument("--ref", type=Path, action="append", default=[],
                    help="RapidOCR output from rapid_ref.py (repeatable)")
    ap.add_argument("--target", type=float, default=95.0, help="%% of ref lines to match")
    ap.add_argument("--out", type=Path, default=BENCH / "out" / "accuracy.json")
    ap.add_argument("--save-pred", type=Path, help="also write our lines (rapid_ref.py shape)")
    args = ap.parse_args()

    corpus, truth = benchlib.load_truth(args.corpus)
    lat = []
    wire = {"dropped": 0, "errors": [], "warnings": 0, "bad": []}
    if args.server:
        with urllib.request.urlopen("http://%s/pipelines" % args.server, timeout=10) as r:
            listing = json.load(r)
        entry = next((p for p in listing["pipelines"] if p["id"] == args.pipeline), {})
        int8 = entry.get("int8") or {}
        print("pipeline %s runs %s: %s" % (args.pipeline, "int8 models" if int8.get("runs")
                                           else "fp32 models", int8.get("reason", "no int8 variant")))
        preds, wire, lat = stream_corpus(args, corpus, truth)
    else:
        preds = json.loads(args.pred.read_text())
    if args.save_pred:
        args.save_pred.parent.mkdir(parents=True, exist_ok=True)
        args.save_pred.write_text(json.dumps(preds, indent=1) + "\n")
    refs = {str(p): json.loads(p.read_text()) for p in args.ref}

    ours_truth = benchlib.truth_report(truth, preds)
    refs_truth = {name: benchlib.truth_report(truth, r) for name, r in refs.items()}
    refs_match = {name: benchlib.ref_report(r, preds) for name, r in refs.items()}

    # Table.
    short = {name: "R%d" % i for i, name in enumerate(refs)}
    head = "%-9s %9s %5s %6s" % ("frame", "size", "truth", "ours") + "".join(
        " %6s" % short[n] for n in refs) + "  notes"
    print(head)
    print("-" * len(head))
    failures = []
    empty_frames = [f for f in truth["frames"] if not f["lines"]]
    for f, ours in zip(truth["frames"], ours_truth):
        n_ours = len(preds.get(f["file"], []))
        cells = "%-9s %9s %5d %6s" % (f["file"], "%dx%d" % (f["width"], f["height"]),
                                      len(f["lines"]), mark(ours, n_ours))
        notes = ["ours: want %r got %r" % (m["want"], m["got"]) for m in ours["misses"]]
        for name in refs:
            rt = next(r for r in refs_truth[name] if r["file"] == f["file"])
            cells += " %6s" % mark(rt, len(refs[name].get(f["file"], [])))
            notes += ["%s: want %r got %r" % (short[name], m["want"], m["got"])
                      for m in rt["misses"]]
        print(cells + ("  " + "; ".join(notes) if notes else ""))
    print("-" * len(head))
    print("ok/N: every rendered line read exactly, N lines returned; MISS: a line misread; "
          "fpN: N lines on a frame without text")

    n_truth = sum(len(f["lines"]) for f in truth["frames"])
    ours_read = n_truth - sum(len(r["misses"]) for r in ours_truth)
    ours_frames_ok = sum(1 for r in ours_truth if r["ok"] and r["lines"])
    n_text_frames = sum(1 for f in truth["frames"] if f["lines"])
    ours_fp = sum(len(preds.get(f["file"], [])) for f in empty_frames)
    print("truth: ours %d/%d lines, %d/%d frames with text fully read; "
          "%d lines on %d no-text frames"
          % (ours_read, n_truth, ours_frames_ok, n_text_frames, ours_fp, len(empty_frames)))
    if ours_read < n_truth:
        failures.append("ours misread %d rendered lines" % (n_truth - ours_read))
    for name in refs:
        rt = refs_truth[name]
        r_read = n_truth - sum(len(r["misses"]) for r in rt)
        r_fp = sum(len(refs[name].get(f["file"], [])) for f in empty_frames)
        rm = refs_match[name]
        print("%s %s: truth %d/%d lines, %d no-text lines | ours match %d/%d of its lines "
              "(%.1f%%; boxes matched %d, mean IoU %.2f)"
              % (short[name], name, r_read, n_truth, r_fp, rm["text_matched"], rm["ref_lines"],
                 rm["pct"], rm["box_matched"], rm["box_iou_mean"]))
        for d in rm["diffs"][:15]:
            print("    %s: ref %r ours %r" % (d["frame"], d["ref"], d["ours"]))
        if len(rm["diffs"]) > 15:
            print("    ... %d more" % (len(rm["diffs"]) - 15))
        if rm["pct"] < args.target:
            failures.append("%s: ours match %.1f%% of RapidOCR's lines (< %.0f%%)"
                            % (short[name], rm["pct"], args.target))
        if r_read < n_truth:
            failures.append("%s (RapidOCR) misread %d rendered lines: fix the corpus"
                            % (short[name], n_truth - r_read))
        if ours_fp > r_fp:
            failures.append("%d lines on no-text frames (%s: %d)" % (ours_fp, short[name], r_fp))
    if not refs and ours_fp:
        failures.append("%d lines on no-text frames" % ours_fp)
    if args.server:
        print("wire: %d frames, %d dropped, %d errors, %d malformed, %d slow_down; "
              "latency median %.1f ms (one session, includes corpus mix)"
              % (len(lat), wire["dropped"], len(wire["errors"]), len(wire["bad"]),
                 wire["warnings"], 1000 * statistics.median(lat) if lat else 0))
        if len(lat) < len(truth["frames"]):
            failures.append("only %d of %d frames answered" % (len(lat), len(truth["frames"])))
        if wire["dropped"] or wire["errors"] or wire["bad"]:
            failures.append("wire: %d dropped, %d errors, %d malformed"
                            % (wire["dropped"], len(wire["errors"]), len(wire["bad"])))
            for e in (wire["errors"] + wire["bad"])[:5]:
                print("    %s" % (e,))

    report = {
        "source": args.server or str(args.pred), "pipeline": args.pipeline,
        "corpus": str(corpus), "truth_lines": n_truth, "text_frames": n_text_frames,
        "empty_frames": len(empty_frames),
        "ours": {"truth_lines_read": ours_read, "text_frames_ok": ours_frames_ok,
                 "fp_lines_on_empty_frames": ours_fp, "frames": ours_truth},
        "refs": {name: {"truth_lines_read": n_truth - sum(len(r["misses"]) for r in refs_truth[name]),
                        "match": refs_match[name], "frames": refs_truth[name]} for name in refs},
        "wire": dict(wire, latency_ms_median=1000 * statistics.median(lat) if lat else None),
        "target_pct": args.target, "failures": failures, "pass": not failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print("wrote %s" % args.out)
    if failures:
        print("FAIL: " + "; ".join(failures))
        sys.exit(1)
    print("PASS")


def mark(rep, n):
    if not rep["lines"]:
        return "fp%d" % n if n else "-"
    return ("ok" if rep["ok"] else "MISS") + "/%d" % n


if __name__ == "__main__":
    main()
