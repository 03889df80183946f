#!/usr/bin/env python3
"""Minimal streamhost client: sends one JPEG frame over the WebSocket and prints the reply.

    python3 -m venv .venv && .venv/bin/pip install -r examples/python/requirements.txt
    .venv/bin/python examples/python/stream_client.py                  # examples/frames/frame.jpg
    .venv/bin/python examples/python/stream_client.py photo.jpg --pipeline yolo_ocr

Exits 1 if the server answers with an error that ends the session, recognised by its code:
every code but "pipeline_failure" and "internal_error" (which answer one frame and leave the
session open) closes it, including a decode-level "invalid_frame", which carries the frame's
"frame_index" and closes with 1007. Exits 0 for a result, a dropped frame or a per-frame error.
For streaming many frames with rate control and latency statistics, use the Rust client
(`cargo run -p stream-client -- --help`).

With --frames N (and --fps) it streams the file N times, one frame in flight at a time, and
prints a summary. --reconnect survives a rolling update: when the server closes with 1001
(shutting down) or a connect fails (HTTP 503 while it drains, 502 from a proxy, refused), it
connects again with bounded backoff and goes on with the next frame. Counted, per session
(frame indices restart at 1 on each): a frame is "sent" once handed to the socket; it is then
"answered" (one reply with its frame_index), "abandoned_by_1001" (its session was closed 1001
before its reply came), or "unanswered" (any other ending); sent == answered +
abandoned_by_1001 + unanswered. --json FILE writes these counts, reconnects and the longest gap
between replies as one JSON object (the Rust client's --json keys).
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

# Errors that answer one frame; every other error code ends the session (README, the contract).
PER_FRAME_ERRORS = {"pipeline_failure", "internal_error"}

DEFAULT_FRAME = Path(__file__).resolve().parent.parent / "frames" / "frame.jpg"


# --reconnect: the first pause after a failed connect, doubled per failure up to the second;
# give up after the third without a session.
FIRST_BACKOFF_S, MAX_BACKOFF_S, GIVE_UP_AFTER_S = 0.1, 2.0, 60.0
GOING_AWAY = 1001


class Counts:
    """What happened to the frames, over every session of the run."""

    def __init__(self) -> None:
        self.sent = self.answered = self.abandoned = self.unanswered = self.unmatched = 0
        self.reconnects = self.failed_connects = self.sessions = 0
        self.fatal = None
        self.last_reply = None
        self.longest_gap = 0.0

    def reply_at(self, now: float) -> None:
        if self.last_reply is not None:
            self.longest_gap = max(self.longest_gap, now - self.last_reply)
        self.last_reply = now

    def as_json(self) -> dict:
        return {
            "client": "python", "sent": self.sent, "answered": self.answered,
            "abandoned_by_1001": self.abandoned, "unanswered": self.unanswered,
            "unmatched": self.unmatched, "reconnects": self.reconnects,
            "failed_connects": self.failed_connects,
            "longest_gap_ms": round(self.longest_gap * 1000.0, 1), "fatal": self.fatal,
        }


class ConnectFailed(Exception):
    """No session: refused, HTTP 503/502, handshake or connect timeout."""


async def session(uri: str, headers, data: bytes, args, counts: Counts) -> bool:
    """One session: sends frames (one in flight) until the run is done or the session ends.
    Returns True when the run should go on in a new session (the server closed 1001)."""
    try:
        ws = await connect(uri, max_size=None, compression=None, additional_headers=headers)
    except (InvalidHandshake, OSError) as e:  # OSError includes TimeoutError
        raise ConnectFailed(f"{type(e).__name__}: {e}") from e
    async with ws:
        counts.sessions += 1
        if counts.sessions > 1:
            counts.reconnects += 1
        index = 0
        interval = 1.0 / args.fps if args.fps > 0 else 0.0
        while counts.sent < args.frames:
            started = time.monotonic()
            index += 1
            try:
                await ws.send(data)
            except ConnectionClosed as closed:
                if closed.rcvd is not None and closed.rcvd.code == GOING_AWAY:
                    return True  # the close came first: this frame was never sent
                if closed.rcvd is not None:  # a fatal error closed it (1008 invalid_pipeline, ...)
                    counts.fatal = closed.rcvd.reason or f"close {closed.rcvd.code}"
                    return False
                raise
            counts.sent += 1  # handed to the socket
            try:
                while True:  # warnings (slow_down) carry no frame_index; skip them
                    try:
                        reply = json.loads(await asyncio.wait_for(ws.recv(), args.timeout))
                    except ValueError:
                        continue
                    if isinstance(reply, dict) and "frame_index" in reply:
                        break
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code == GOING_AWAY:
                    counts.abandoned += 1
                    return True
                counts.unanswered += 1
                if closed.rcvd is not None:  # a fatal error without frame_index (frame_too_large)
                    counts.fatal = closed.rcvd.reason or f"close {code}"
                    return False
                raise
            except TimeoutError:
                counts.unanswered += 1
                raise
            counts.reply_at(time.monotonic())
            if reply["frame_index"] != index:
                counts.unmatched += 1
            counts.answered += 1
            if "error" in reply and reply["error"] not in PER_FRAME_ERRORS:
                counts.fatal = reply["error"]
                return False
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        # Between frames a close 1001 may already be waiting; nothing is lost then.
        return False


async def stream(uri: str, headers, data: bytes, args) -> int:
    """--frames/--reconnect: many frames, across sessions when the server goes away."""
    counts = Counts()
    backoff, failing_since = FIRST_BACKOFF_S, None
    problem = None
    while counts.sent < args.frames:
        try:
            again = await session(uri, headers, data, args, counts)
        except ConnectFailed as e:
            if not args.reconnect:
                problem = str(e)
                break
            counts.failed_connects += 1
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > GIVE_UP_AFTER_S:
                problem = f"no session for {GIVE_UP_AFTER_S:.0f}s: {e}"
                break
            print(f"note: {e}; retrying in {backoff:.1f}s", file=sys.stderr)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            continue
        except (ConnectionClosed, TimeoutError) as e:
            problem = f"{type(e).__name__}: {e}"
            break
        backoff, failing_since = FIRST_BACKOFF_S, None
        if not (again and args.reconnect):
            if again:
                problem = "the server closed 1001 (use --reconnect to go on)"
            break
        print("note: the server closed 1001; reconnecting", file=sys.stderr)
    summary = counts.as_json()
    summary["problem"] = problem
    print("Summary:", json.dumps(summary))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(summary) + "\n")
        except OSError as e:
            print(f"error: writing {args.json}: {e}", file=sys.stderr)
            return 2
    if counts.fatal:
        return 1
    return 3 if problem else 0


async def main(args: argparse.Namespace) -> int:
    sep = "&" if "?" in args.url else "?"
    uri = f"{args.url}{sep}{urlencode({'pipeline_id': args.pipeline})}"
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    data = Path(args.file).read_bytes()
    if args.frames is not None or args.reconnect:
        args.frames = 1 if args.frames is None else args.frames
        return await stream(uri, headers, data, args)
    # max_size=None: no limit on incoming messages (replies are small anyway). Outgoing
    # messages are never limited by the websockets client.
    async with connect(uri, max_size=None, compression=None, additional_headers=headers) as ws:
        await ws.send(data)
        msg = await asyncio.wait_for(ws.recv(), args.timeout)
    print("Response:", msg)
    try:
        reply = json.loads(msg)
    except ValueError:
        return 0
    if isinstance(reply, dict) and "error" in reply and reply["error"] not in PER_FRAME_ERRORS:
        return 1
    return 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", nargs="?", default=str(DEFAULT_FRAME), help="JPEG file to send (default: %(default)s)")
    p.add_argument("--url", default="ws://localhost:8000/ws/video/stream", help="stream endpoint (default: %(default)s)")
    p.add_argument("--pipeline", default="frame_info", help="pipeline_id (default: %(default)s)")
    p.add_argument("--token", help="bearer token, sent as an Authorization header")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply (default: %(default)s)")
    p.add_argument("--frames", type=int, help="stream the file this many times and print a summary")
    p.add_argument("--fps", type=float, default=10.0, help="with --frames: frames per second, 0 unpaced (default: %(default)s)")
    p.add_argument("--reconnect", action="store_true", help="after a close 1001 or a failed connect, connect again and go on")
    p.add_argument("--json", help="with --frames: also write the summary as JSON to this file")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
