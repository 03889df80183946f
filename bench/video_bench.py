#!/usr/bin/env python3
"""Video benchmark: speed and accuracy of OCR pipelines on short camera-like clips.

    bench/.venv/bin/python bench/make_clips.py /tmp/clips
    scripts/with-server.sh 127.0.0.1:8765 bench/.venv/bin/python bench/video_bench.py \\
        --server 127.0.0.1:8765 --clips /tmp/clips [--pipelines ocr,ocr_stream] [--rounds 2] \\
        [--json bench/out/video.json]
    bench/.venv/bin/python bench/video_bench.py --self-test

For each round, clip by clip, each pipeline streams the clip through ONE WebSocket session
(ws://HOST:PORT/ws/video/stream?pipeline_id=ID, as bench/ws_bench.py), sending each frame when
the previous reply has arrived; the clip's wall time runs from the first send to the last reply.
The pipelines take turns on each clip, and odd rounds reverse their order, so the machine's
drift falls on both alike. Before the rounds each pipeline gets --warmup uncounted frames (this
also finds a pipeline the server does not have: it is reported as unavailable and the rest
runs without it).

Measures, per pipeline and clip and over all clips (counts summed over the rounds):
  fps           frames / seconds of wall time; the candidate/baseline ratio (the first two
                --pipelines: baseline first), per clip and in all, and per round
  word recall   words (whitespace-split) of the truth lines wholly in the frame found among the
                words of the reply's lines (multiset match per frame), whitespace-normalised
                like benchlib.norm_text, case-sensitive
  line recall   truth lines wholly in the frame with a reply line of exactly that text whose box
                has IoU > 0.3 with the truth box (benchlib.hull/iou); "joined" also accepts
                benchlib.read_truth_line's reading (a line split in two by the detector)
  stale words   reply words not among the words of any truth line in the frame (full or
                partial), but among those of an earlier frame of the clip: text that left the
                frame or changed, still reported
  reused        the fraction of reply lines with "reused": true (ocr_stream)
Targets (candidate against baseline): fps >= 3x, word recall at most 1 point lower, 0 stale
words. Prints a table, each target met or not; --json writes everything (below). Exit status:
1 when frames failed (or, with --strict, when a target is missed: `make bench` reports targets
rather than failing on them, as bench/report.py does), 2 when a requested pipeline is
unavailable, 0 otherwise.

--stills DIR instead sends each still of make_clips.py --stills (tests/clips) as a one-frame
session of the first pipeline and checks that every line is read exactly (IoU > 0.3), no more.

--json OUT (counts are summed over the rounds; null where there is nothing to divide):
  {"version": 1, "server": "HOST:PORT", "clips_dir": DIR, "clips_seed": S,
   "clips": [{"name", "frames"}], "pipelines": [requested, baseline first], "rounds": N,
   "warmup_frames": K,
   "unavailable": {PIPELINE: {"error": code, "detail": text}},
   "results": {PIPELINE: {"clips": {CLIP: STATS + EXAMPLES}, "total": STATS}},
   "ratio_fps": null | {"baseline", "candidate", "total": x, "clips": {CLIP: x},
                        "rounds": [x per round]},
   "rounds_detail": [{"round": i, "order": [PIPELINE],
                      "clips": {CLIP: {PIPELINE: {"seconds", "fps", "errors"}}}}],
   "targets": [{"name": "speedup"|"word_recall"|"stale_words", "want": text, "got": value,
                "met": true|false|null, "why": text (only when null)}],
   "pass": bool, "exit_status": 0|1|2}
  STATS: {"frames", "seconds", "fps", "latency_ms": {"median", "p90"},
          "words": {"truth", "found", "recall_pct"},
          "lines": {"truth", "read", "recall_pct", "read_joined", "recall_joined_pct"},
          "stale_words", "reply_lines", "reused_lines", "reused_fraction", "errors"}
  EXAMPLES (at most 10 each): "stale_examples": [{"round", "frame", "file", "word", "count"}],
          "missed_examples": [{"round", "frame", "file", "want", "got", "read_joined"}],
          "error_samples": [the server's error replies, at most 3]
word_recall's "got" is candidate minus baseline in points.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import hull, iou, norm_text, percentile, read_truth_line  # noqa: E402

REPLY_TIMEOUT = 60.0
IOU_THRESH = 0.3
TARGET_SPEEDUP = 3.0
TARGET_RECALL_DROP = 1.0  # percentage points
EXAMPLES = 10


def words_of(text):
    return norm_text(text).split(" ") if norm_text(text) else []


def pct(num, den):
    return round(100.0 * num / den, 2) if den else None


# ---------------------------------------------------------------------------------------------
# Scoring (pure; --self-test checks it)


def new_score():
    return {"frames": 0, "words_truth": 0, "words_found": 0, "lines_truth": 0, "lines_read": 0,
            "lines_read_joined": 0, "stale_words": 0, "reply_lines": 0, "reused_lines": 0,
            "stale_examples": [], "missed_examples": []}


def score_clip(clip, replies, score=None, round_no=0):
    """Add one run of a clip to score. replies[i]: the reply lines for clip["frames"][i]
    (a list of {"text", "box", ...}; [] when the frame got no result)."""
    score = score if score is not None else new_score()
    seen = set()  # words of every truth line of the earlier frames
    for i, (frame, lines) in enumerate(zip(clip["frames"], replies)):
        lines = lines or []
        present = {w for t in frame["lines"] for w in words_of(t["text"])}
        full = [t for t in frame["lines"] if t.get("visible", "full") == "full"]
        want = Counter(w for t in full for w in words_of(t["text"]))
        got = Counter(w for r in lines for w in words_of(r.get("text", "")))
        score["frames"] += 1
        score["words_truth"] += sum(want.values())
        score["words_found"] += sum((want & got).values())
        for t in full:
            text, box = norm_text(t["text"]), hull(t["box"])
            score["lines_truth"] += 1
            read = any(norm_text(r.get("text", "")) == text and "box" in r
                       and iou(hull(r["box"]), box) > IOU_THRESH for r in lines)
            joined = read or read_truth_line(t, [r for r in lines if "box" in r]) == text
            score["lines_read"] += read
            score["lines_read_joined"] += joined
            if not read and len(score["missed_examples"]) < EXAMPLES:
                score["missed_examples"].append(
                    {"round": round_no, "frame": i, "file": frame["file"], "want": t["text"],
                     "got": read_truth_line(t, [r for r in lines if "box" in r]),
                     "read_joined": joined})
        for w, n in got.items():
            if w not in present and w in seen:
                score["stale_words"] += n
                if len(score["stale_examples"]) < EXAMPLES:
                    score["stale_examples"].append({"round": round_no, "frame": i,
                                                    "file": frame["file"], "word": w,
                                                    "count": n})
        score["reply_lines"] += len(lines)
        score["reused_lines"] += sum(1 for r in lines if r.get("reused") is True)
        seen |= present
    return score


def add_scores(total, s):
    for k, v in s.items():
        if isinstance(v, list):
            continue
        total[k] = total.get(k, 0) + v
    return total


def summary(score, seconds, latencies, errors, error_samples):
    frames = score["frames"]
    out = {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 3) if seconds > 0 else None,
        "latency_ms": {"median": round(1000 * statistics.median(latencies), 1) if latencies
                       else None,
                       "p90": round(1000 * percentile(latencies, 90), 1) if latencies else None},
        "words": {"truth": score["words_truth"], "found": score["words_found"],
                  "recall_pct": pct(score["words_found"], score["words_truth"])},
        "lines": {"truth": score["lines_truth"], "read": score["lines_read"],
                  "recall_pct": pct(score["lines_read"], score["lines_truth"]),
                  "read_joined": score["lines_read_joined"],
                  "recall_joined_pct": pct(score["lines_read_joined"], score["lines_truth"])},
        "stale_words": score["stale_words"],
        "reply_lines": score["reply_lines"],
        "reused_lines": score["reused_lines"],
        "reused_fraction": (round(score["reused_lines"] / score["reply_lines"], 4)
                            if score["reply_lines"] else None),
        "errors": errors,
    }
    if "stale_examples" in score:
        out["stale_examples"] = score["stale_examples"]
        out["missed_examples"] = score["missed_examples"]
        out["error_samples"] = error_samples[:3]
    return out


# ---------------------------------------------------------------------------------------------
# The wire


class Unavailable(Exception):
    """The server refused the session (unknown pipeline, failed load check, ...)."""


def session_uri(args, pipeline):
    return "ws://%s/ws/video/stream?%s" % (args.server, urlencode({"pipeline_id": pipeline}))


async def next_reply(ws):
    """The next reply that is not a slow_down warning, parsed."""
    while True:
        msg = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
        if not isinstance(msg, str):
            return {"error": "binary_reply", "detail": "%d bytes" % len(msg)}
        reply = json.loads(msg)
        if reply.get("warning"):
            continue
        return reply


async def refusal(ws, exc):
    """What the server said when it closed the session: its last {"error", "detail"} message
    if one is still buffered, else the close code and reason."""
    try:
        reply = await asyncio.wait_for(ws.recv(), 1.0)
        if isinstance(reply, str) and "error" in json.loads(reply):
            return json.loads(reply)
    except Exception:  # noqa: BLE001 - the connection is gone either way
        pass
    rcvd = getattr(exc, "rcvd", None)
    return {"error": getattr(rcvd, "reason", None) or "closed",
            "detail": "connection closed (code %s)" % getattr(rcvd, "code", None)}


async def stream(args, pipeline, frames):
    """Stream frames (JPEG bytes) through one session, one in flight. Returns (reply lines per
    frame, seconds from first send to last reply, latencies, errors, error samples).
    Raises Unavailable when the server refuses the session before the first result."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    headers = {"Authorization": "Bearer " + args.token} if args.token else None
    replies, lat, errors, samples = [], [], 0, []
    try:
        ws = await connect(session_uri(args, pipeline), max_size=None, compression=None,
                           proxy=None, additional_headers=headers, open_timeout=10,
                           close_timeout=5)
    except InvalidStatus as e:  # refused before the upgrade (401, 503, ...)
        body = e.response.body.decode(errors="replace") if e.response.body else ""
        try:
            raise Unavailable(json.loads(body)) from e
        except json.JSONDecodeError:
            raise Unavailable({"error": "http_%d" % e.response.status_code,
                               "detail": body[:200]}) from e
    except OSError as e:
        raise SystemExit("video_bench: cannot connect to %s: %s" % (args.server, e)) from e
    async with ws:
        t_start = time.perf_counter()
        t_last = t_start
        for i, data in enumerate(frames):
            t0 = time.perf_counter()
            try:
                await ws.send(data)
                reply = await next_reply(ws)
            except ConnectionClosed as e:
                reply = await refusal(ws, e)
                if not replies or all(r is None for r in replies):
                    raise Unavailable(reply) from e
                errors += len(frames) - i
                samples.append(reply)
                replies += [None] * (len(frames) - i)
                break
            except asyncio.TimeoutError:
                errors += len(frames) - i
                samples.append({"error": "timeout", "detail": "no reply in %gs" % REPLY_TIMEOUT})
                replies += [None] * (len(frames) - i)
                break
            t_last = time.perf_counter()
            if "result" in reply and "error" not in reply:
                lat.append(t_last - t0)
                replies.append((reply["result"] or {}).get("text") or [])
                continue
            if "error" in reply and "frame_index" not in reply and i == 0:
                raise Unavailable(reply)  # a session-level refusal
            errors += 1
            samples.append(reply)
            replies.append(None)
            if "error" in reply and "frame_index" not in reply:  # session-level: server closes
                errors += len(frames) - i - 1
                replies += [None] * (len(frames) - i - 1)
                break
    return replies, t_last - t_start, lat, errors, samples


# ---------------------------------------------------------------------------------------------
# The run


def load_clips(clips_dir, only):
    truth = json.loads((clips_dir / "truth.json").read_text())
    clips = [c for c in truth["clips"] if not only or c["name"] in only]
    if only and len(clips) != len(only):
        known = [c["name"] for c in truth["clips"]]
        raise SystemExit("video_bench: unknown clip(s) %s (have %s)"
                         % (sorted(set(only) - set(known)), known))
    data = {c["name"]: [(clips_dir / f["file"]).read_bytes() for f in c["frames"]]
            for c in clips}
    return truth, clips, data


async def amain(args):
    truth, clips, data = load_clips(args.clips, args.clip)
    pipelines = [p for p in args.pipelines.split(",") if p.strip()]
    unavailable = {}
    log = lambda *a: print("video_bench:", *a, file=sys.stderr, flush=True)  # noqa: E731

    # Warm-up: also finds the pipelines the server does not have.
    first = data[clips[0]["name"]]
    for p in pipelines:
        try:
            if args.warmup:
                _, _, _, errors, samples = await stream(args, p, first[:args.warmup])
                if errors:
                    log("%s: warm-up errors %s" % (p, samples[:1]))
        except Unavailable as e:
            unavailable[p] = e.args[0]
            log("%s: NOT AVAILABLE on %s: %s: %s" % (p, args.server, e.args[0].get("error"),
                                                      e.args[0].get("detail")))
    running = [p for p in pipelines if p not in unavailable]

    acc = {p: {c["name"]: {"score": new_score(), "seconds": 0.0, "lat": [], "errors": 0,
                           "samples": []} for c in clips} for p in running}
    rounds = []
    for r in range(args.rounds):
        order = running if r % 2 == 0 else running[::-1]
        rd = {"round": r, "order": order, "clips": {}}
        for c in clips:
            rd["clips"][c["name"]] = {}
            for p in order:
                if p in unavailable:
                    continue
                try:
                    replies, secs, lat, errors, samples = await stream(args, p, data[c["name"]])
                except Unavailable as e:  # e.g. the pipeline was removed meanwhile
                    unavailable[p] = e.args[0]
                    log("%s: NOT AVAILABLE: %s" % (p, e.args[0]))
                    continue
                a = acc[p][c["name"]]
                a["replies"] = replies
                score_clip(c, replies, a["score"], r)
                a["seconds"] += secs
                a["lat"] += lat
                a["errors"] += errors
                a["samples"] += samples
                fps = len(replies) / secs if secs > 0 else None
                rd["clips"][c["name"]][p] = {"seconds": round(secs, 3),
                                             "fps": round(fps, 3) if fps else None,
                                             "errors": errors}
                log("round %d %-14s %-12s %6.2f frames/s%s"
                    % (r, c["name"], p, fps or 0, " (%d errors)" % errors if errors else ""))
        rounds.append(rd)

    running = [p for p in running if p not in unavailable]
    if args.replies:
        args.replies.parent.mkdir(parents=True, exist_ok=True)
        args.replies.write_text(json.dumps(
            {p: {c: a.get("replies") for c, a in acc[p].items()} for p in running}) + "\n")
    results = {}
    for p in running:
        per, tot, secs, lat, errs = {}, new_score(), 0.0, [], 0
        for c in clips:
            a = acc[p][c["name"]]
            per[c["name"]] = summary(a["score"], a["seconds"], a["lat"], a["errors"],
                                     a["samples"])
            add_scores(tot, a["score"])
            secs += a["seconds"]
            lat += a["lat"]
            errs += a["errors"]
        tot = {k: v for k, v in tot.items() if not isinstance(v, list)}
        results[p] = {"clips": per, "total": summary(tot, secs, lat, errs, [])}

    base, cand = (pipelines + [None, None])[:2]
    ratio = None
    if base in results and cand in results:
        def rat(a, b):
            return round(a / b, 3) if a and b else None
        ratio = {"baseline": base, "candidate": cand,
                 "total": rat(results[cand]["total"]["fps"], results[base]["total"]["fps"]),
                 "clips": {c["name"]: rat(results[cand]["clips"][c["name"]]["fps"],
                                          results[base]["clips"][c["name"]]["fps"])
                           for c in clips},
                 "rounds": []}
        for rd in rounds:  # the candidate's time over the baseline's, both on every clip
            runs = [v for v in rd["clips"].values() if base in v and cand in v]
            ratio["rounds"].append(rat(sum(v[base]["seconds"] for v in runs),
                                       sum(v[cand]["seconds"] for v in runs)))

    targets = []
    if cand is not None:
        if cand in results and base in results:
            b, c_ = results[base]["total"], results[cand]["total"]
            drop = (b["words"]["recall_pct"] - c_["words"]["recall_pct"]
                    if b["words"]["recall_pct"] is not None
                    and c_["words"]["recall_pct"] is not None else None)
            targets = [
                {"name": "speedup", "want": ">= %gx %s frames/s" % (TARGET_SPEEDUP, base),
                 "got": ratio["total"],
                 "met": ratio["total"] is not None and ratio["total"] >= TARGET_SPEEDUP},
                {"name": "word_recall", "want": "at most %g points below %s"
                 % (TARGET_RECALL_DROP, base),
                 "got": None if drop is None else round(-drop, 2) + 0.0,
                 "met": drop is not None and drop <= TARGET_RECALL_DROP},
                {"name": "stale_words", "want": "0", "got": c_["stale_words"],
                 "met": c_["stale_words"] == 0},
            ]
        else:
            why = "%s unavailable" % ", ".join(p for p in (base, cand) if p not in results)
            targets = [{"name": n, "want": w, "got": None, "met": None, "why": why}
                       for n, w in (("speedup", ">= %gx" % TARGET_SPEEDUP),
                                    ("word_recall", "at most %g points below"
                                     % TARGET_RECALL_DROP),
                                    ("stale_words", "0"))]
    errors = sum(results[p]["total"]["errors"] for p in results)
    if unavailable:
        status = 2
    elif errors or (args.strict and any(t["met"] is False for t in targets)):
        status = 1
    else:
        status = 0
    return {
        "version": 1,
        "server": args.server,
        "clips_dir": str(args.clips),
        "clips_seed": truth.get("seed"),
        "clips": [{"name": c["name"], "frames": len(c["frames"])} for c in clips],
        "pipelines": pipelines,
        "rounds": args.rounds,
        "warmup_frames": args.warmup,
        "unavailable": unavailable,
        "results": results,
        "ratio_fps": ratio,
        "rounds_detail": rounds,
        "targets": targets,
        "pass": status == 0,
        "exit_status": status,
    }


async def check_stills(args):
    """Each still of DIR (make_clips.py --stills) as a one-frame session of the first pipeline;
    every truth line must come back with exactly its text and a box with IoU > 0.3."""
    truth = json.loads((args.stills / "truth.json").read_text())
    pipeline = args.pipelines.split(",")[0]
    out = {"pipeline": pipeline, "stills": str(args.stills), "images": [], "pass": True}
    for img in truth["images"]:
        try:
            replies, _, _, errors, samples = await stream(
                args, pipeline, [(args.stills / img["file"]).read_bytes()])
        except Unavailable as e:
            raise SystemExit("video_bench: %s not available: %s" % (pipeline, e.args[0]))
        lines = replies[0] or []
        used, rows = set(), []
        for t in img["lines"]:
            hit = next((j for j, r in enumerate(lines) if j not in used
                        and norm_text(r["text"]) == norm_text(t["text"])
                        and iou(hull(r["box"]), hull(t["box"])) > IOU_THRESH), None)
            if hit is not None:
                used.add(hit)
            rows.append({"want": t["text"], "box": t["box"], "ok": hit is not None,
                         "got": read_truth_line(t, lines)})
        extra = [r["text"] for j, r in enumerate(lines) if j not in used]
        ok = all(r["ok"] for r in rows) and not extra and not errors
        out["pass"] &= ok
        out["images"].append({"file": img["file"], "ok": ok, "lines": rows, "extra": extra,
                              "errors": samples})
        print("%-14s %s" % (img["file"], "ok" if ok else "FAIL"))
        for r in rows:
            print("    %-4s want %-22r got %r" % ("ok" if r["ok"] else "MISS", r["want"], r["got"]))
        for e in extra:
            print("    EXTRA %r" % e)
        for e in samples:
            print("    ERROR %r" % e)
    return out


# ---------------------------------------------------------------------------------------------
# The table


def fmt(v, spec="%.1f", none="-"):
    return none if v is None else spec % v


def print_table(out, file=sys.stdout):
    res, ratio = out["results"], out["ratio_fps"]
    ps = [p for p in out["pipelines"] if p in res]
    p = lambda *a: print(*a, file=file)  # noqa: E731
    p()
    p("video_bench: %s, %d round(s), clips %s" % (out["server"], out["rounds"],
                                                  out["clips_dir"]))
    for name, why in out["unavailable"].items():
        p("  %s: NOT AVAILABLE (%s: %s)" % (name, why.get("error"), why.get("detail")))
    if not ps:
        return
    w = max(10, max(len(x) for x in ps))
    head = "%-14s %6s" % ("clip", "frames")
    groups = [("frames/s", lambda s: fmt(s["fps"], "%.2f")),
              ("word %", lambda s: fmt(s["words"]["recall_pct"])),
              ("line %", lambda s: fmt(s["lines"]["recall_pct"])),
              ("stale", lambda s: str(s["stale_words"])),
              ("reused %", lambda s: fmt(None if s["reused_fraction"] is None
                                         else 100 * s["reused_fraction"]))]
    sub = "%-14s %6s" % ("", "")
    for g, _ in groups:
        cols = len(ps) + (1 if g == "frames/s" and ratio else 0)
        width = cols * (w + 1) - 1
        head += " | " + g.center(width)
        sub += " | " + " ".join(x.rjust(w) for x in ps + (["ratio"] if g == "frames/s"
                                                           and ratio else []))
    p(head)
    p(sub)
    p("-" * len(sub))
    names = [c["name"] for c in out["clips"]] + ["TOTAL"]
    for name in names:
        stats = [res[x]["total"] if name == "TOTAL" else res[x]["clips"][name] for x in ps]
        row = "%-14s %6d" % (name, stats[0]["frames"])
        for g, f in groups:
            cells = [f(s) for s in stats]
            if g == "frames/s" and ratio:
                r = ratio["total"] if name == "TOTAL" else ratio["clips"][name]
                cells.append(fmt(r, "%.2fx"))
            row += " | " + " ".join(c.rjust(w) for c in cells)
        p(row)
    for x in ps:
        t = res[x]["total"]
        p("%s: line recall with split lines joined %s%%, errors %d, latency median %s ms"
          % (x, fmt(t["lines"]["recall_joined_pct"]), t["errors"],
             fmt(t["latency_ms"]["median"])))
        ex = [e for c in res[x]["clips"].values() for e in c["stale_examples"]][:5]
        if ex:
            p("  stale words, e.g.: " + ", ".join("%s %r" % (e["file"], e["word"]) for e in ex))
        ex = [e for c in res[x]["clips"].values() for e in c["missed_examples"]][:5]
        if ex:
            p("  missed lines, e.g.: " + ", ".join("%s %r->%r" % (e["file"], e["want"], e["got"])
                                                   for e in ex))
    if ratio and len(ratio["rounds"]) > 1:
        p("%s/%s frames/s per round: %s" % (ratio["candidate"], ratio["baseline"],
                                            ", ".join(fmt(r, "%.2fx") for r in ratio["rounds"])))
    for t in out["targets"]:
        state = {True: "met", False: "NOT MET", None: "n/a"}[t["met"]]
        p("target %-12s want %-36s got %-8s %s%s" % (t["name"], t["want"], fmt(t["got"], "%s"),
                                                  state, " (%s)" % t["why"] if "why" in t else ""))


# ---------------------------------------------------------------------------------------------
# Self-test of the scoring


def self_test():
    box = lambda x1, y1, x2, y2: [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]  # noqa: E731
    clip = {"name": "t", "frames": [
        {"file": "t/000.jpg", "lines": [
            {"text": "Visitors: 1041", "box": [100, 100, 300, 130], "visible": "full"},
            {"text": "Gate B17", "box": [600, 10, 640, 40], "visible": "partial"}]},
        {"file": "t/001.jpg", "lines": [
            {"text": "Visitors: 1042", "box": [100, 100, 300, 130], "visible": "full"},
            {"text": "Gate B17", "box": [620, 10, 640, 40], "visible": "partial"}]},
        {"file": "t/002.jpg", "lines": [
            {"text": "Visitors: 1042", "box": [100, 100, 300, 130], "visible": "full"}]},
    ]}
    replies = [
        # frame 0: read right; the partial line's words are never stale or counted as truth
        [{"text": "Visitors: 1041", "box": box(101, 99, 299, 131)},
         {"text": "Gate", "box": box(600, 10, 640, 40)}],
        # frame 1: the old counter, reused: "1041" is stale, "Visitors:" still found
        [{"text": "Visitors: 1041", "box": box(101, 99, 299, 131), "reused": True},
         {"text": "Gate", "box": box(620, 10, 640, 40), "reused": True}],
        # frame 2: right text in the wrong place (no line credit, words credited), plus "Gate"
        # which left the frame (stale) and "Exit" which was never there (not stale: a misread)
        [{"text": "Visitors: 1042", "box": box(400, 300, 600, 330)},
         {"text": "Gate Exit", "box": box(600, 10, 640, 40)}],
    ]
    s = score_clip(clip, replies)
    checks = {
        "frames": (s["frames"], 3),
        "words_truth": (s["words_truth"], 6),
        "words_found": (s["words_found"], 5),  # all but frame 1's "1042"
        "lines_truth": (s["lines_truth"], 3),
        "lines_read": (s["lines_read"], 1),
        "stale_words": (s["stale_words"], 2),  # 1041 in frame 1, Gate in frame 2
        "reply_lines": (s["reply_lines"], 6),
        "reused_lines": (s["reused_lines"], 2),
        "stale_examples": ([(e["frame"], e["word"]) for e in s["stale_examples"]],
                           [(1, "1041"), (2, "Gate")]),
    }
    # Multiset matching: a word twice in the truth needs two reply words.
    clip2 = {"name": "m", "frames": [{"file": "m/000.jpg", "lines": [
        {"text": "Zone C", "box": [0, 0, 100, 30], "visible": "full"},
        {"text": "Zone  D", "box": [0, 50, 100, 80], "visible": "full"}]}]}
    s2 = score_clip(clip2, [[{"text": "Zone C", "box": box(0, 0, 100, 30)}]])
    checks["multiset"] = ((s2["words_found"], s2["words_truth"], s2["lines_read"]), (2, 4, 1))
    # A line split in two by the detector: not read, but read when joined.
    s3 = score_clip(clip2, [[{"text": "Zone", "box": box(0, 0, 45, 30)},
                             {"text": "C", "box": box(60, 0, 100, 30)}]])
    checks["joined"] = ((s3["lines_read"], s3["lines_read_joined"]), (0, 1))
    # A frame without a reply (error) scores as an empty reply.
    s4 = score_clip(clip2, [None])
    checks["no_reply"] = ((s4["words_found"], s4["words_truth"]), (0, 4))
    sm = summary(s, 2.0, [0.1, 0.2], 0, [])
    checks["summary"] = ((sm["fps"], sm["words"]["recall_pct"], sm["reused_fraction"]),
                         (1.5, 83.33, 0.3333))
    bad = {k: v for k, v in checks.items() if v[0] != v[1]}
    for k, (got, want) in checks.items():
        print("self-test %-15s %s" % (k, "ok" if k not in bad else "FAIL: got %r, want %r"
                                      % (got, want)))
    return not bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--server", metavar="HOST:PORT")
    ap.add_argument("--clips", type=Path, help="output directory of bench/make_clips.py")
    ap.add_argument("--pipelines", default="ocr,ocr_stream",
                    help="comma-separated; the first is the baseline, the second the candidate "
                         "the targets are checked on (default ocr,ocr_stream; 'ocr' alone: no "
                         "targets)")
    ap.add_argument("--clip", action="append", help="only this clip (repeatable)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="passes over the clips; odd rounds run the pipelines in reverse order")
    ap.add_argument("--warmup", type=int, default=3,
                    help="uncounted frames per pipeline before the first round (default 3)")
    ap.add_argument("--token", help="bearer token for the server")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the full results here")
    ap.add_argument("--replies", type=Path, metavar="OUT",
                    help="write every reply's lines here: {pipeline: {clip: [lines per frame]}} "
                         "(the last round; null for a frame without a result)")
    ap.add_argument("--stills", type=Path, metavar="DIR",
                    help="instead: check that the first of --pipelines reads every line of the "
                         "stills in DIR (make_clips.py --stills), one frame per session")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target is missed (otherwise only failed frames do)")
    ap.add_argument("--self-test", action="store_true",
                    help="check the scoring on hand-made replies and exit")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(0 if self_test() else 1)
    if args.stills and args.server:
        out = asyncio.run(check_stills(args))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1) + "\n")
        print("video_bench: stills %s" % ("all read" if out["pass"] else "NOT all read"))
        sys.exit(0 if out["pass"] else 1)
    if not args.server or not args.clips:
        ap.error("--server and --clips are required (or --self-test)")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    out = asyncio.run(amain(args))
    print_table(out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
        print("video_bench: wrote %s" % args.json)
    sys.exit(out["exit_status"])


if __name__ == "__main__":
    main()
