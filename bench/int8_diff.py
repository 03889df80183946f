#!/usr/bin/env python3
"""Every difference between two servers' `ocr` answers on folders of frames (issue 16).

    bench/.venv/bin/python bench/int8_diff.py --ref HOST:PORT --cand HOST:PORT DIR [DIR ...]

The server's int8 gate stops at the first difference, which is what a gate should do; choosing
a quantisation recipe needs all of them. Start one server with `STREAMHOST_INT8_MODELS=off` and
one with `force` (and a manifest naming the candidate `int8_model`), then this streams every
`*.jpg` of each folder through both, one frame at a time, and prints per folder: frames whose
lines read differently, lines whose box moved by more than `--px` pixels, the largest move,
and each differing frame. Exits 1 if any frame differs (the gate's rule).
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path

from websockets.asyncio.client import connect


async def answers(server, pipeline, files):
    out = {}
    async with connect(f"ws://{server}/ws/video/stream?pipeline_id={pipeline}",
                       max_size=None) as ws:
        for f in files:
            await ws.send(f.read_bytes())
            reply = json.loads(await ws.recv())
            out[f.name] = reply.get("result", {"error": reply})
    return out


def moved(a, b):
    return max(abs(p[k] - q[k]) for p, q in zip(a["box"], b["box"]) for k in (0, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True)
    ap.add_argument("--cand", required=True)
    ap.add_argument("--pipeline", default="ocr")
    ap.add_argument("--px", type=float, default=2.0)
    ap.add_argument("dirs", nargs="+", type=Path)
    args = ap.parse_args()
    differ = 0
    for d in args.dirs:
        files = sorted(d.glob("*.jpg"))
        ref = asyncio.run(answers(args.ref, args.pipeline, files))
        cand = asyncio.run(answers(args.cand, args.pipeline, files))
        text_frames, box_lines, worst, notes = 0, 0, 0.0, []
        for f in files:
            a, b = ref[f.name].get("text", []), cand[f.name].get("text", [])
            ta, tb = [l["text"] for l in a], [l["text"] for l in b]
            if ta != tb:
                text_frames += 1
                notes.append(f"  {f.name}: text {ta} -> {tb}")
                continue
            for la, lb in zip(a, b):
                m = moved(la, lb)
                worst = max(worst, m)
                if m > args.px:
                    box_lines += 1
                    notes.append(f"  {f.name}: box of {la['text']!r} moved {m:.0f} px")
        lines = sum(len(r.get("text", [])) for r in ref.values())
        print(f"{d}: {len(files)} frames, {lines} lines; frames reading differently: "
              f"{text_frames}; lines moved over {args.px} px: {box_lines}; largest move "
              f"{worst:.0f} px")
        print("\n".join(notes))
        differ += text_frames + box_lines
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
