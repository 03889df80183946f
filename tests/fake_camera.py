#!/usr/bin/env python3
"""Render the browser test's fake camera clip: a Y4M file with known text lines.

    python tests/fake_camera.py OUT.y4m [STILL.png] > lines.json

Chromium plays OUT.y4m as its camera (`--use-file-for-fake-video-capture`), looping. Every
frame shows the same lines on a light background (a slow gradient moves, so it is video, not a
still); STILL.png, if named, is its first frame (for the page's still-image source). What was drawn and where goes to stdout as JSON:
    {"width": W, "height": H, "lines": [{"text": "...", "box": [x1, y1, x2, y2]}]}
box is the ink bounding box in frame pixels. The lower part of the frame is kept free of text
so the test can check the overlay draws nothing there. Needs Pillow and numpy (the project's
quantisation venv has both) and Debian's DejaVu fonts (scripts/setup.sh installs them).
"""

import json
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT, FRAMES, FPS = 640, 480, 10, 10
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
LINES = [("STREAMHOST LIVE", (48, 56)), ("CAMERA 417 OK", (48, 150))]
SIZE = 46


def frame(t):
    x = np.linspace(0, 1, WIDTH)[None, :]
    y = np.linspace(0, 1, HEIGHT)[:, None]
    shade = 225 + 20 * np.sin(2 * np.pi * (x + y + t / FRAMES))
    rgb = np.stack([shade, shade, shade * 0.97], axis=-1).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, SIZE)
    boxes = []
    for text, origin in LINES:
        d.text(origin, text, font=font, fill=(20, 24, 30))
        boxes.append({"text": text, "box": list(d.textbbox(origin, text, font=font))})
    return img, boxes


def main():
    out = sys.argv[1]
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for t in range(FRAMES):
            img, boxes = frame(t)
            y, cb, cr = img.convert("YCbCr").split()
            half = (WIDTH // 2, HEIGHT // 2)
            f.write(b"FRAME\n")
            f.write(y.tobytes())
            f.write(cb.resize(half, Image.BOX).tobytes())
            f.write(cr.resize(half, Image.BOX).tobytes())
            if t == 0 and len(sys.argv) > 2:
                img.save(sys.argv[2])
    json.dump({"width": WIDTH, "height": HEIGHT, "lines": boxes}, sys.stdout)


if __name__ == "__main__":
    main()
