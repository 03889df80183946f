#!/usr/bin/env python3
"""End-to-end demo of a running streamhost server: checks the shape of every reply.

    make run &                         # builds and serves on 127.0.0.1:8000, then in another shell:
    make demo                          # a venv in examples/python/.venv, then this script
    # or by hand: python3 -m venv .venv && .venv/bin/pip install -r examples/python/requirements.txt
    #             .venv/bin/python examples/python/demo.py [--host 127.0.0.1:8000] [--pipeline frame_info]

Each section prints PASS or FAIL with what it saw; the exit status is 1 if any section failed.
Sections (numbered as in the original demo; there is no section 3):

  1  GET /health is 200 JSON with a "status" field
  2  GET /pipelines lists the chosen pipeline
  4  a valid frame gets {"frame_index": 1, "result": {...}}
  5  b"not-a-jpeg" gets {"error": "invalid_frame", ...} and the server closes
  6  a 6 MB "JPEG" gets {"error": "frame_too_large", ...}
  7  30 frames sent without waiting: 30 replies, frame_index 1..30 once each, some dropped
  8  frames sent without waiting until {"warning": "slow_down"} (at most 200 frames / 30 s)
  9  GET /metrics exposes the stream_* metrics

Only the standard library and `websockets` are used (urllib for HTTP, with proxies bypassed).
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DEFAULT_FRAME = Path(__file__).resolve().parent.parent / "frames" / "frame.jpg"
TIMEOUT = 10.0  # seconds for any single reply or HTTP request
BURST = 30  # section 7
SLOWDOWN_MAX_FRAMES = 200  # section 8
SLOWDOWN_MAX_SECONDS = 30.0
METRICS = [
    "stream_sessions_active",
    "stream_frames_processed",
    "stream_frames_dropped",
    "stream_slowdown_signals",
]


class Fail(Exception):
    """A section's check failed; the message says what was seen."""


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------- helpers

def http_get(args, path):
    """(status, content type, body) of GET http://HOST/path; non-2xx is returned, not raised."""
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    req = urllib.request.Request(f"http://{args.host}{path}", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get_content_type(), e.read()


def ws_connect(args):
    uri = f"ws://{args.host}/ws/video/stream?{urlencode({'pipeline_id': args.pipeline})}"
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    # max_size=None lifts the 1 MiB default on *incoming* messages (replies are small anyway);
    # the client never limits what it sends, so section 6 can send 6 MB.
    return connect(
        uri,
        max_size=None,
        compression=None,  # JPEG does not compress; keep the wire format plain
        proxy=None,
        additional_headers=headers,
        open_timeout=TIMEOUT,
        close_timeout=5,
    )


async def recv_json(ws, timeout=TIMEOUT):
    try:
        msg = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise Fail(f"no reply within {timeout}s") from None
    except ConnectionClosed as e:
        raise Fail(f"connection closed instead of a reply ({close_text(e)})") from None
    check(isinstance(msg, str), f"expected a text message, got {len(msg)} binary bytes")
    try:
        reply = json.loads(msg)
    except ValueError:
        raise Fail(f"reply is not JSON: {msg[:200]!r}") from None
    check(isinstance(reply, dict), f"reply is not a JSON object: {msg[:200]}")
    return reply


def close_text(e: ConnectionClosed) -> str:
    rcvd = e.rcvd
    if rcvd is None:
        return "no close frame"
    return f"close code {rcvd.code}" + (f": {rcvd.reason}" if rcvd.reason else "")


async def expect_close(ws, timeout=5.0) -> str:
    """Waits for the server to close; fails if it sends anything else or stays open."""
    try:
        msg = await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as e:
        return close_text(e)
    except asyncio.TimeoutError:
        raise Fail(f"connection still open {timeout}s after the fatal error") from None
    raise Fail(f"expected the server to close, got another message: {str(msg)[:200]}")


async def expect_fatal(ws, error: str, detail: str) -> str:
    reply = await recv_json(ws)
    check("frame_index" not in reply, f"fatal error must carry no frame_index: {reply}")
    check(reply.get("error") == error, f'expected error "{error}", got {reply}')
    check(reply.get("detail") == detail, f'expected detail "{detail}", got {reply}')
    how = await expect_close(ws)
    return f"{json.dumps(reply)}, then closed ({how})"


# ---------------------------------------------------------------- sections

async def s1_health(args):
    status, ctype, body = http_get(args, "/health")
    check(status == 200, f"status {status}: {body[:200]!r}")
    check(ctype == "application/json", f"content type {ctype}, expected application/json")
    data = json.loads(body)
    check(isinstance(data, dict) and "status" in data, f"no 'status' field in {data}")
    return json.dumps(data)


def pipeline_ids(data):
    """Pipeline ids from /pipelines, whichever of the plausible shapes it has."""
    if isinstance(data, dict) and "pipelines" in data:
        data = data["pipelines"]
    if isinstance(data, dict):
        return set(data)
    ids = set()
    for item in data if isinstance(data, list) else []:
        if isinstance(item, str):
            ids.add(item)
        elif isinstance(item, dict):
            ids.update(str(item[k]) for k in ("id", "pipeline_id", "name") if k in item)
    return ids


async def s2_pipelines(args):
    status, _, body = http_get(args, "/pipelines")
    check(status == 200, f"status {status}: {body[:200]!r}")
    ids = pipeline_ids(json.loads(body))
    check(args.pipeline in ids, f"'{args.pipeline}' not among {sorted(ids)}")
    return f"{sorted(ids)}"


async def s4_valid_frame(args):
    async with ws_connect(args) as ws:
        await ws.send(args.frame_bytes)
        reply = await recv_json(ws, timeout=30.0)  # the first frame may warm a model up
    check(reply.get("frame_index") == 1, f"expected frame_index 1: {reply}")
    check(isinstance(reply.get("result"), dict), f"expected a result object: {reply}")
    lines = reply["result"].get("text")
    if isinstance(lines, list):
        # ocr / yolo_ocr: show what was read, not 300 characters of boxes.
        read = [line.get("text") for line in lines if isinstance(line, dict)]
        detections = reply["result"].get("detections")
        extra = f", {len(detections)} detections" if isinstance(detections, list) else ""
        return f"frame_index 1, text read: {read}{extra}"
    text = json.dumps(reply)
    return text if len(text) < 300 else text[:300] + "..."


async def s5_invalid_frame(args):
    async with ws_connect(args) as ws:
        await ws.send(b"not-a-jpeg")
        return await expect_fatal(ws, "invalid_frame", "Not a valid JPEG image")


async def s6_frame_too_large(args):
    big = b"\xff\xd8" + b"0" * (6 * 1024 * 1024) + b"\xff\xd9"
    async with ws_connect(args) as ws:
        try:
            await ws.send(big)
        except ConnectionClosed as e:
            # The server may close while the upload is still in flight; the reply, if it was
            # sent, is still readable below.
            print(f"      (send interrupted: {close_text(e)})")
        return await expect_fatal(ws, "frame_too_large", "Frame exceeds 5MB")


async def s7_burst(args):
    async with ws_connect(args) as ws:
        for _ in range(BURST):
            await ws.send(args.frame_bytes)
        indices, dropped, warnings = [], 0, 0
        while len(indices) < BURST:
            reply = await recv_json(ws, timeout=30.0)
            if "warning" in reply and "frame_index" not in reply:
                warnings += 1
                continue
            check("frame_index" in reply, f"unexpected message: {reply}")
            indices.append(reply["frame_index"])
            if reply.get("dropped") is True:
                dropped += 1
            else:
                check(
                    "result" in reply or "error" in reply,
                    f"frame reply is neither result, dropped nor error: {reply}",
                )
    check(sorted(indices) == list(range(1, BURST + 1)), f"frame_index values {indices}")
    check(dropped >= 1, f"no frame was dropped out of {BURST} sent without waiting")
    return f"{BURST} replies, {dropped} dropped, {BURST - dropped} answered, {warnings} warning(s)"


async def s8_slow_down(args):
    seen = asyncio.Event()
    counts = {"replies": 0, "dropped": 0}

    async def reader(ws):
        try:
            async for msg in ws:
                try:
                    reply = json.loads(msg)
                except ValueError:
                    continue
                if not isinstance(reply, dict):
                    continue
                if reply.get("warning") == "slow_down":
                    seen.set()
                elif "frame_index" in reply:
                    counts["replies"] += 1
                    counts["dropped"] += reply.get("dropped") is True
        except ConnectionClosed:
            pass

    async with ws_connect(args) as ws:
        task = asyncio.create_task(reader(ws))
        sent, start = 0, time.monotonic()
        try:
            while (
                not seen.is_set()
                and sent < SLOWDOWN_MAX_FRAMES
                and time.monotonic() - start < SLOWDOWN_MAX_SECONDS
            ):
                await ws.send(args.frame_bytes)
                sent += 1
                await asyncio.sleep(0)  # let the reader run between sends
            if not seen.is_set():
                try:  # the warning may trail the last frames a little
                    await asyncio.wait_for(seen.wait(), 3.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            task.cancel()
    check(
        seen.is_set(),
        f"no slow_down after {sent} frames ({counts['replies']} replies, {counts['dropped']} dropped)",
    )
    return f"slow_down after {sent} frames ({counts['replies']} replies, {counts['dropped']} dropped so far)"


async def s9_metrics(args):
    status, _, body = http_get(args, "/metrics")
    check(status == 200, f"status {status}: {body[:200]!r}")
    text = body.decode("utf-8", "replace")
    missing = [m for m in METRICS if m not in text]
    check(not missing, f"missing {missing}")
    lines = [l for l in text.splitlines() if l.startswith(tuple(METRICS))]
    return "; ".join(lines[:8])


SECTIONS = [
    (1, "GET /health", s1_health),
    (2, "GET /pipelines", s2_pipelines),
    (4, "valid frame -> result", s4_valid_frame),
    (5, "invalid frame -> invalid_frame, close", s5_invalid_frame),
    (6, "6 MB frame -> frame_too_large", s6_frame_too_large),
    (7, f"{BURST} frames without waiting -> drops, indices 1..{BURST}", s7_burst),
    (8, "tight loop -> slow_down warning", s8_slow_down),
    (9, "GET /metrics", s9_metrics),
]


async def main(args) -> int:
    args.frame_bytes = Path(args.frame).read_bytes()
    print(f"streamhost demo against {args.host}, pipeline {args.pipeline}, frame {args.frame}")
    failed = []
    for number, title, section in SECTIONS:
        try:
            detail = await section(args)
            print(f"PASS ({number}) {title}: {detail}")
        except Fail as e:
            failed.append(number)
            print(f"FAIL ({number}) {title}: {e}")
        except Exception as e:  # connection refused, bad JSON, ...: report and go on
            failed.append(number)
            print(f"FAIL ({number}) {title}: {type(e).__name__}: {e}")
    print(f"{len(SECTIONS) - len(failed)}/{len(SECTIONS)} passed" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1:8000", help="server host:port (default: %(default)s)")
    p.add_argument("--pipeline", default="frame_info", help="pipeline_id to exercise (default: %(default)s)")
    p.add_argument("--frame", default=str(DEFAULT_FRAME), help="valid JPEG to send (default: %(default)s)")
    p.add_argument("--token", help="bearer token, sent as an Authorization header")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
