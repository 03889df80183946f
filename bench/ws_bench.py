#!/usr/bin/env python3
"""End-to-end latency and throughput of a streamhost pipeline through its WebSocket.

    bench/.venv/bin/python bench/ws_bench.py --server 127.0.0.1:8000 --pipeline ocr \\
        --corpus bench/corpus --sessions 1,2,4,8 --seconds 20

For each N in --sessions, N concurrent sessions stream corpus frames (each from its own start
frame, cycling) for --seconds; every session sends its next frame as soon as the previous
reply arrives, so no frame should be dropped. Each session first sends --warmup frames that are
not counted. Reports per N: frames answered with a result, frames/s over the wall time, latency
(send to reply) median/p90, drops, errors, slow_down warnings. "latency_1_session" repeats the
N=1 latency (run even when 1 is not in --sessions, unless --listed-only). JSON on stdout; exit
status 1 on any drop, error or timeout.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import percentile as pct  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPLY_TIMEOUT = 60.0


def ms(x):
    return None if x is None else round(1000.0 * x, 1)


def load_frames(corpus):
    truth = json.loads((corpus / "truth.json").read_text())
    return [(corpus / f["file"]).read_bytes() for f in truth["frames"]]


async def one_reply(ws, stats):
    """The reply to the frame just sent, skipping slow_down warnings."""
    while True:
        msg = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
        if not isinstance(msg, str):
            stats["errors"] += 1
            return None
        reply = json.loads(msg)
        if reply.get("warning"):
            stats["slow_down"] += 1
            continue
        return reply


async def session(args, frames, start, warmup, t_go, deadline, stats):
    uri = "ws://%s/ws/video/stream?%s" % (args.server, urlencode({"pipeline_id": args.pipeline}))
    headers = {"Authorization": "Bearer " + args.token} if args.token else None
    async with connect(uri, max_size=None, compression=None, proxy=None,
                       additional_headers=headers, open_timeout=10, close_timeout=5) as ws:
        i = start
        for _ in range(warmup):
            await ws.send(frames[i % len(frames)])
            await one_reply(ws, {"errors": 0, "slow_down": 0})
            i += 1
        if not stats["ready"].done():
            stats["ready"].set_result(None)
        await t_go.wait()
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            await ws.send(frames[i % len(frames)])
            i += 1
            try:
                reply = await one_reply(ws, stats)
            except asyncio.TimeoutError:
                stats["timeouts"] += 1
                return
            t1 = time.perf_counter()
            stats["last"] = max(stats["last"], t1)
            if reply is None:
                continue
            if reply.get("dropped"):
                stats["dropped"] += 1
            elif "error" in reply:
                stats["errors"] += 1
                stats["error_samples"].append(reply)
                if "frame_index" not in reply:
                    return  # session-level error: the server closes
            elif "result" in reply:
                stats["lat"].append(t1 - t0)
            else:
                stats["errors"] += 1
                stats["error_samples"].append(reply)


async def run_n(args, frames, n):
    loop = asyncio.get_running_loop()
    per = [{"lat": [], "dropped": 0, "errors": 0, "slow_down": 0, "timeouts": 0, "last": 0.0,
            "error_samples": [], "ready": loop.create_future()} for _ in range(n)]
    t_go = asyncio.Event()
    deadline = [float("inf")]
    tasks = [asyncio.create_task(session(args, frames, (k * len(frames)) // n, args.warmup,
                                         t_go, deadline, per[k])) for k in range(n)]
    ready = asyncio.gather(*(s["ready"] for s in per))
    done, _ = await asyncio.wait([ready] + tasks, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:  # a session failed before it was ready
        for t in tasks:
            t.cancel()
        ready.cancel()
        err = next(t.exception() for t in done if t is not ready and t.exception())
        raise SystemExit("session failed to start: %r" % (err,))
    t_start = time.perf_counter()
    deadline[0] = t_start + args.seconds
    t_go.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    lat = [x for s in per for x in s["lat"]]
    wall = max([s["last"] for s in per] + [t_start + 1e-9]) - t_start
    return {
        "sessions": n,
        "seconds": round(wall, 2),
        "frames": len(lat),
        "throughput_fps": round(len(lat) / wall, 2) if wall > 0 else None,
        "latency_ms": {"median": ms(statistics.median(lat)) if lat else None,
                       "p90": ms(pct(lat, 90)), "max": ms(max(lat)) if lat else None},
        "dropped": sum(s["dropped"] for s in per),
        "errors": sum(s["errors"] for s in per) + len(failures),
        "timeouts": sum(s["timeouts"] for s in per),
        "slow_down": sum(s["slow_down"] for s in per),
        "error_samples": ([s for p in per for s in p["error_samples"]][:3]
                          + [repr(f) for f in failures][:3]),
    }


async def amain(args):
    frames = load_frames(args.corpus)
    sessions = [int(x) for x in args.sessions.split(",") if x.strip()]
    out = {"server": args.server, "pipeline": args.pipeline, "corpus": str(args.corpus),
           "frames_in_corpus": len(frames), "seconds_per_run": args.seconds,
           "warmup_frames_per_session": args.warmup, "runs": []}
    order = sessions if 1 in sessions or args.listed_only else [1] + sessions
    for n in order:
        print("ws_bench: %d session(s) ..." % n, file=sys.stderr, flush=True)
        r = await run_n(args, frames, n)
        if n == 1:
            out["latency_1_session"] = {"median_ms": r["latency_ms"]["median"],
                                        "p90_ms": r["latency_ms"]["p90"],
                                        "frames": r["frames"]}
        if n in sessions:
            out["runs"].append(r)
    out["throughput_fps"] = {str(r["sessions"]): r["throughput_fps"] for r in out["runs"]}
    bad = sum(r["dropped"] + r["errors"] + r["timeouts"] for r in out["runs"])
    out["pass"] = bad == 0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--server", required=True, metavar="HOST:PORT")
    ap.add_argument("--pipeline", default="ocr")
    ap.add_argument("--corpus", type=Path, default=BENCH / "corpus")
    ap.add_argument("--sessions", default="1,2,4,8")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=int, default=2, help="uncounted frames per session")
    ap.add_argument("--token", help="bearer token for the server")
    ap.add_argument("--listed-only", action="store_true",
                    help="run only the --sessions counts (no 1-session latency run first)")
    args = ap.parse_args()
    out = asyncio.run(amain(args))
    print(json.dumps(out, indent=1))
    sys.exit(0 if out["pass"] else 1)


if __name__ == "__main__":
    main()
