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
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlencode

from websockets.asyncio.client import connect

# Errors that answer one frame; every other error code ends the session (README, the contract).
PER_FRAME_ERRORS = {"pipeline_failure", "internal_error"}

DEFAULT_FRAME = Path(__file__).resolve().parent.parent / "frames" / "frame.jpg"


async def main(args: argparse.Namespace) -> int:
    sep = "&" if "?" in args.url else "?"
    uri = f"{args.url}{sep}{urlencode({'pipeline_id': args.pipeline})}"
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    data = Path(args.file).read_bytes()
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
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
