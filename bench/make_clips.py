#!/usr/bin/env python3
"""Generate short camera-like video clips (JPEG frames plus truth.json) for the video benchmark.

    bench/.venv/bin/python bench/make_clips.py /tmp/clips [--frames 60] [--seed S]
    bench/.venv/bin/python bench/make_clips.py --stills tests/clips

Five clips of --frames frames each (default 60: 300 frames in all), 640x480, JPEG quality 90,
nominal 15 fps; bench/video_bench.py streams them to the server:
  static_noise   a sign on a textured wall, nothing moves; Gaussian sensor noise (sigma 3) per frame
  slow_pan       a smooth pan (1.8-3 px/frame right, 0.5 px/frame down) across a 1600x600 sign
                 board, starting where the most lines leave or enter the frame entirely
  handheld_zoom  a menu page with hand-held jitter (smoothed random walk, 1-3 px/frame) and a slow
                 zoom about the frame centre, 1.0 -> 1.15 -> 1.0; edge lines go out and come back
  scene_cuts     five scenes with a hard cut every frames/5 frames and small jitter in each; scene
                 B keeps scene A's background and two of its line positions with different words,
                 then a board with no text at all, on which scene C's words appear, and scene D
                 does to C what B did to A (the hard cases: only the words change; text appears)
  changing_line  a static, slightly noisy notice whose visitor counter changes every 8 frames

Each scene is drawn once on a canvas at 2x its size (text placed by baseline, one word at a time
like make_corpus.py so word gaps are unambiguous); a frame is the canvas through an exact affine
map (scale and translation, bicubic, rendered at 2x and box-filtered down), plus noise. The ink
box of every line is taken from the rendered glyph mask on the canvas and mapped through the same
transform, so the truth boxes are exact to the sub-pixel.

Deterministic: fixed seeds (noise from a generator seeded by (seed, clip, frame)), the Debian fonts
make_corpus.py uses and pinned Pillow/numpy (bench/requirements.txt) give byte-identical output.

truth.json:
    {"version": 1, "seed": S, "width": 640, "height": 480,
     "clips": [{"name": "slow_pan", "fps": 15, "frames": [
         {"file": "slow_pan/000.jpg", "scene": 0,
          "transform": {"scale": z, "x": X, "y": Y},
          "lines": [{"text": "...", "box": [x1, y1, x2, y2], "visible": "full"|"partial"}]}]}]}
Every line with any ink in the frame is listed; box is its ink box in frame pixels, clipped to the
frame; "full" when the whole ink box lies inside the frame. transform: frame pixel (u, v) shows
the scene canvas at (X + u / z, Y + v / z) (the camera's true motion, for debugging motion
estimates). scene changes at each cut of scene_cuts (0 elsewhere).

--stills DIR writes instead the small still images the Rust end-to-end tests cut clips from
(tests/clips: wide.jpg 1000x360, scene_a/scene_b.jpg and counter_1/counter_2.jpg 480x360, JPEG
quality 92, with DIR/truth.json {"version": 1, "images": [{"file", "width", "height",
"lines": [{"text", "box"}]}]}), rendered at 1x without noise.
"""

import argparse
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_corpus import FONTS, find_font, gradient, procedural_scene, word_positions  # noqa: E402

SEED = 20250412
VERSION = 1
W, H = 640, 480
FPS = 15
SS = 2  # canvas supersampling
OS = 2  # frames are rendered at OS x and box-filtered down
JPEG_QUALITY = 90
STILLS_QUALITY = 92
CHANGE_EVERY = 8  # changing_line: frames between counter changes

CLIPS = ["static_noise", "slow_pan", "handheld_zoom", "scene_cuts", "changing_line"]

# Readable lines in the style of make_corpus.LINES: words, digits, prices.
SIGN_LINES = [
    "Exit 12B", "Speed limit 50", "OPEN 24 HOURS", "Gate B17", "Total: $18.40",
    "Room 305", "NO PARKING", "Order #58213", "Made in Canada", "Main Street", "Pharmacy",
    "Ticket A-0931", "Caution: Wet Floor", "Route 66", "Price 4.99", "Call 555-0199",
    "Check-in 14:30", "Platform 3", "Welcome Home", "Zone C", "Level 2", "Bus 42 to Airport",
    "Aisle 7", "Model XR-200", "Flight BA 117", "Departures", "Temp 21.5 C", "Station North",
    "SALE 50% OFF", "Parking P2", "Library", "Fresh Coffee", "Push to open", "Car Wash",
    "Dock 14", "Lane 3 closed", "Track 12", "Floor 6", "Bakery & Cafe", "Next stop: Central",
    "Hotel Plaza", "Mon-Fri 9-17", "Keep Left", "Elm Ave", "Visitor Parking",
]
MENU_ITEMS = [
    ("Espresso", "2.40"), ("Cappuccino", "3.20"), ("Green Tea", "2.10"), ("Croissant", "1.75"),
    ("Bagel", "3.25"), ("Orange Juice", "2.80"), ("Soup of the day", "4.50"),
    ("Apple Pie", "3.90"), ("Hot Chocolate", "2.95"), ("Cheese Toast", "4.15"),
]

PAPER = (236, 232, 222)
INK = (28, 28, 34)


def font(name, px):
    return ImageFont.truetype(str(find_font(name)), px)


def noise_field(nrng, w, h, cell, amp):
    """Smooth random field (bicubic-upsampled Gaussian noise), float32 h x w, std ~ amp."""
    small = nrng.normal(0.0, amp, (h // cell + 3, w // cell + 3)).astype(np.float32)
    img = Image.fromarray(small, "F").resize(((w // cell + 3) * cell, (h // cell + 3) * cell),
                                             Image.BICUBIC)
    return np.array(img, dtype=np.float32)[:h, :w]


def textured(nrng, w, h, c0, c1, vertical=True, blotch=8.0, grain=2.0):
    """A gradient with low-frequency blotches and fine grain (paper, painted wall)."""
    base = np.asarray(gradient(w, h, c0, c1, vertical), dtype=np.float32)
    lum = noise_field(nrng, w, h, max(8, w // 24), blotch)
    lum += nrng.normal(0.0, grain, (h, w)).astype(np.float32)
    return Image.fromarray(np.clip(base + lum[:, :, None], 0, 255).round().astype(np.uint8), "RGB")


class Canvas:
    """A scene: an RGB image at ss x its size in units, and the lines drawn on it with their
    ink boxes in units (taken from the glyph masks)."""

    def __init__(self, img, ss=SS):
        self.ss = ss
        self.img = img
        self.w, self.h = img.width / ss, img.height / ss
        self.lines = []

    def copy(self):
        c = Canvas(self.img.copy(), self.ss)
        c.lines = [dict(line) for line in self.lines]
        return c

    def rect(self, box, fill, radius=0, outline=None, width=0):
        s = self.ss
        d = ImageDraw.Draw(self.img)
        d.rounded_rectangle([round(v * s) for v in box], radius=round(radius * s), fill=fill,
                            outline=outline, width=round(width * s))

    def measure(self, text, font_name, size):
        """Ink extent (left, top, right, bottom) in units, relative to (x, baseline)."""
        f = font(font_name, size * self.ss)
        boxes = [(xo + l, t, xo + r, b) for xo, word in word_positions(f, size * self.ss, text)
                 for l, t, r, b in [f.getbbox(word, anchor="ls")]]
        return tuple(v / self.ss for v in (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                           max(b[2] for b in boxes), max(b[3] for b in boxes)))

    def text(self, text, font_name, size, x, baseline, fill, align="left"):
        """Draw a line with its ink's left (right, centre) edge at x and its baseline at
        `baseline` (units); returns its truth entry."""
        s = self.ss
        f = font(font_name, size * s)
        words = word_positions(f, size * s, text)
        boxes = [(xo + l, t, xo + r, b) for xo, word in words
                 for l, t, r, b in [f.getbbox(word, anchor="ls")]]
        L, T = min(b[0] for b in boxes), min(b[1] for b in boxes)
        R, B = max(b[2] for b in boxes), max(b[3] for b in boxes)
        m = 4 * s
        mask = Image.new("L", (R - L + 2 * m, B - T + 2 * m), 0)
        d = ImageDraw.Draw(mask)
        for xo, word in words:
            d.text((xo - L + m, -T + m), word, font=f, fill=255, anchor="ls")
        left = {"left": x * s, "right": x * s - (R - L), "center": x * s - (R - L) / 2}[align]
        px, py = round(left) - m, round(baseline * s) + T - m
        self.img.paste(Image.new("RGB", mask.size, tuple(fill)), (px, py), mask)
        mb = mask.getbbox()
        line = {"text": text, "box": [(px + mb[0]) / s, (py + mb[1]) / s,
                                      (px + mb[2]) / s, (py + mb[3]) / s],
                "font": font_name, "size": size}
        self.lines.append(line)
        return line


def render(canvas, zoom, x, y, nrng=None, sigma=0.0):
    """The frame showing canvas point (x + u/zoom, y + v/zoom) at frame pixel (u, v)."""
    s = 1.0 / zoom
    assert x >= 0 and y >= 0 and x + W * s <= canvas.w and y + H * s <= canvas.h, (x, y, zoom)
    a = canvas.ss * s / OS
    img = canvas.img.transform((W * OS, H * OS), Image.AFFINE,
                               (a, 0.0, canvas.ss * x, 0.0, a, canvas.ss * y),
                               resample=Image.BICUBIC)
    img = img.reduce(OS)
    if sigma > 0:
        arr = np.asarray(img, dtype=np.float32) + nrng.normal(0.0, sigma, (H, W, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")
    return img


def frame_lines(canvas, zoom, x, y):
    out = []
    for line in canvas.lines:
        x1, y1, x2, y2 = [(v - o) * zoom for v, o in zip(line["box"], (x, y, x, y))]
        cx1, cy1, cx2, cy2 = max(0.0, x1), max(0.0, y1), min(float(W), x2), min(float(H), y2)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        full = x1 >= 0 and y1 >= 0 and x2 <= W and y2 <= H
        out.append({"text": line["text"], "box": [round(v, 2) for v in (cx1, cy1, cx2, cy2)],
                    "visible": "full" if full else "partial"})
    return out


def pick(rng, pool, n, used):
    """n distinct entries of pool not in used (a set, updated)."""
    choice = rng.sample([p for p in pool if p not in used], n)
    used.update(choice)
    return choice


# ---------------------------------------------------------------------------------------------
# Scenes


def sign_board(rng, nrng, cw, ch, board, rows, used, dark_row=None):
    """A canvas cw x ch (units) with a procedural background and a light board (x1, y1, x2, y2);
    rows: [(baseline, size)], each filled left to right with lines spaced 2.5-5 em apart.
    dark_row: index of a row drawn light-on-dark on a dark band."""
    bg = procedural_scene(rng, nrng, cw * SS, ch * SS)
    c = Canvas(bg)
    c.rect(board, fill=(40, 44, 52), radius=14)
    c.rect((board[0] + 8, board[1] + 8, board[2] - 8, board[3] - 8), fill=(234, 232, 224),
           radius=10)
    for r, (baseline, size) in enumerate(rows):
        fname = rng.choice(FONTS)
        fill, band = INK, None
        if r == dark_row:
            band = (board[0] + 8, baseline - 1.25 * size, board[2] - 8, baseline + 0.55 * size)
            c.rect(band, fill=(30, 58, 96))
            fill = (245, 240, 220)
        x = board[0] + 20 + rng.uniform(0, 3 * size)
        while True:
            text = pick(rng, SIGN_LINES, 1, used)[0]
            l, _, r_, _ = c.measure(text, fname, size)
            if x + (r_ - l) > board[2] - 24:
                used.discard(text)
                break
            c.text(text, fname, size, x, baseline, fill)
            x += (r_ - l) + rng.uniform(2.5, 5.0) * size
    return c


def static_noise_scene(rng, nrng):
    """A wall with a sign of six lines: a light-on-dark title band and dark text."""
    c = Canvas(textured(nrng, W * SS, H * SS, (150, 140, 120), (110, 104, 92), blotch=10,
                        grain=3))
    c.rect((60, 40, 580, 440), fill=(36, 36, 40), radius=12)
    c.rect((68, 48, 572, 432), fill=(240, 238, 230), radius=8)
    c.rect((68, 48, 572, 118), fill=(150, 30, 30), radius=8)
    title, *rest = pick(rng, SIGN_LINES, 6, set())
    c.text(title.upper(), "DejaVuSans-Bold.ttf", 36, W / 2, 98, (250, 250, 245), align="center")
    y = 170
    for i, text in enumerate(rest):
        size = [30, 24, 26, 20, 22][i]
        fname = ["LiberationSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSans.ttf",
                 "LiberationSans-Regular.ttf", "DejaVuSansMono.ttf"][i]
        c.text(text, fname, size, 96 + (i % 2) * 40, y, INK)
        y += size * 2.0 + 8
    return c


def slow_pan_scene(rng, nrng):
    rows = [(115, 36), (205, 26), (290, 30), (370, 22), (450, 32), (530, 24)]
    return sign_board(rng, nrng, 1600, 600, (20, 30, 1580, 580), rows, set(), dark_row=2)


def handheld_scene(rng, nrng):
    """A menu page (items left, prices right-aligned) larger than the frame, on a table."""
    cw, ch = 760, 600
    c = Canvas(textured(nrng, cw * SS, ch * SS, (92, 64, 44), (70, 48, 34), False, 12, 4))
    paper = textured(nrng, 700 * SS, 560 * SS, PAPER, (222, 216, 204), True, 5, 2)
    c.img.paste(paper, (30 * SS, 20 * SS))
    items = rng.sample(MENU_ITEMS, 6)
    # At zoom 1 the frame sees x 60-700, y 60-540 (+- jitter); at 1.15, x 102-658, y 91-509.
    c.rect((30, 66, 730, 140), fill=(44, 62, 48))
    c.text("CAFE MENU", "DejaVuSerif.ttf", 38, 380, 122, (240, 232, 200), align="center")
    y = 190
    for i, (name, price) in enumerate(items):
        size = [28, 24, 26, 22, 24, 20][i]
        fname = ["DejaVuSans.ttf", "LiberationSerif-Regular.ttf", "DejaVuSans.ttf",
                 "LiberationSans-Regular.ttf", "DejaVuSerif.ttf", "DejaVuSans.ttf"][i]
        # Alternate margins so some lines sit near the frame's edges and leave it when zoomed.
        left, right = (76, 684) if i % 2 == 0 else (130, 630)
        c.text(name, fname, size, left, y, INK)
        c.text("$" + price, fname, size, right, y, (120, 20, 20), align="right")
        y += size * 2.2 + 6
    c.text("Open daily 8-20", "DejaVuSans-Bold.ttf", 22, 380, 528, (44, 62, 48), align="center")
    return c


def cut_scenes(rng, nrng):
    """Five scenes: A; B = A's background, two of A's positions with other words, one new line;
    a blank board (C's, no text); C: that board with its words written on it; D = C's
    background, two of C's positions, one new line."""
    cw, ch = 680, 520
    used = set()
    bg_a = textured(nrng, cw * SS, ch * SS, (222, 226, 230), (196, 204, 212), True, 6, 2)
    a = Canvas(bg_a.copy())
    a.rect((40, 40, 640, 480), fill=(250, 250, 246), radius=10)
    base_a = a.copy()
    specs_a = [("DejaVuSans-Bold.ttf", 38, 80, 120), ("LiberationSans-Regular.ttf", 28, 80, 215),
               ("DejaVuSerif.ttf", 30, 120, 310), ("DejaVuSans.ttf", 24, 80, 410)]
    texts = pick(rng, SIGN_LINES, 4, used)
    for (fn, size, x, y), t in zip(specs_a, texts):
        a.text(t, fn, size, x, y, INK)
    b = base_a.copy()  # same background and board
    for (fn, size, x, y), t in zip(specs_a[:2], pick(rng, SIGN_LINES, 2, used)):
        b.text(t, fn, size, x, y, INK)  # same positions, different words
    b.text(pick(rng, SIGN_LINES, 1, used)[0], "LiberationSerif-Bold.ttf", 32, 220, 370, INK)

    bg_c = textured(nrng, cw * SS, ch * SS, (36, 40, 52), (20, 22, 30), False, 6, 2)
    c = Canvas(bg_c)
    c.rect((60, 70, 620, 450), fill=(18, 70, 40), radius=18, outline=(230, 230, 230), width=4)
    base_c = c.copy()
    light = (244, 244, 236)
    specs_c = [("LiberationSans-Bold.ttf", 40, 340, 160), ("DejaVuSans.ttf", 30, 340, 260),
               ("LiberationSansNarrow-Bold.ttf", 34, 340, 370)]
    for (fn, size, x, y), t in zip(specs_c, pick(rng, SIGN_LINES, 3, used)):
        c.text(t, fn, size, x, y, light, align="center")
    d = base_c.copy()
    for (fn, size, x, y), t in zip(specs_c[:2], pick(rng, SIGN_LINES, 2, used)):
        d.text(t, fn, size, x, y, light, align="center")
    d.text(pick(rng, SIGN_LINES, 1, used)[0], "DejaVuSans-Bold.ttf", 26, 110, 420, light)
    # C's board before its words: a cut to a frame with no text at all, then words appear on it.
    blank = base_c.copy()
    return [a, b, blank, c, d]


def counter_scenes(rng, nrng, n_variants):
    """A museum notice; the visitor counter line changes (one or two digits at a time)."""
    c = Canvas(textured(nrng, W * SS, H * SS, (205, 210, 200), (180, 188, 178), True, 6, 2))
    c.rect((70, 50, 570, 430), fill=(250, 248, 240), radius=10, outline=(60, 60, 60), width=3)
    c.text("CITY MUSEUM", "DejaVuSerif.ttf", 40, W / 2, 120, INK, align="center")
    c.text("Open Mon-Fri 9-17", "LiberationSans-Regular.ttf", 26, 110, 190, INK)
    c.text("Guided tours 11:00", "DejaVuSans.ttf", 22, 110, 240, INK)
    c.rect((100, 270, 540, 330), fill=(30, 40, 70), radius=6)
    c.text("Tickets $12.50", "DejaVuSans.ttf", 24, 110, 400, INK)
    out, n = [], 1041
    for _ in range(n_variants):
        v = c.copy()
        v.text("Visitors: %d" % n, "DejaVuSans-Bold.ttf", 30, 120, 312, (250, 226, 120))
        out.append(v)
        n += rng.choice([1, 1, 2, 3, 7])
    return out


# ---------------------------------------------------------------------------------------------
# Camera paths: (scene index, zoom, x, y) per frame


def jitter_walk(rng, n, step=1.2, damping=0.6, spring=0.06, limit=3.0, bound=15.0):
    """Smoothed random walk: per-frame moves mostly 0.5-3 px (at most limit), pulled back
    towards 0 and kept within +-bound."""
    pos, vel, out = 0.0, 0.0, []
    for _ in range(n):
        vel = damping * vel + rng.gauss(0.0, step) - spring * pos
        vel = max(-limit, min(limit, vel))
        pos = max(-bound, min(bound, pos + vel))
        out.append(pos)
    return out


def plan_clip(name, rng, n, scenes):
    if name == "static_noise" or name == "changing_line":
        return [(min(i // CHANGE_EVERY, len(scenes) - 1) if name == "changing_line" else 0,
                 1.0, 0.0, 0.0) for i in range(n)]
    if name == "slow_pan":
        phase = rng.uniform(0, 2 * math.pi)
        dx, x = [], 0.0
        for i in range(n):
            dx.append(x)
            x += 2.4 + 0.6 * math.sin(phase + 2 * math.pi * i / 40.0)
        # A long clip pans back when it reaches the end of the board.
        span = scenes[0].w - W - 200 - 1
        dx = [d % (2 * span) for d in dx]
        dx = [2 * span - d if d > span else d for d in dx]
        travel = max(dx)

        # Start where most lines leave the frame entirely on the left or come in entirely on
        # the right during the pan (text that has left must not be reported).
        def events(x0):
            return sum((x0 < ln["box"][0] and ln["box"][2] < x0 + travel - 1)
                       or (x0 + W + 1 < ln["box"][0] and ln["box"][2] < x0 + W + travel)
                       for ln in scenes[0].lines)
        x0 = max(range(200, int(scenes[0].w - W - travel)), key=lambda v: (events(v), -v))
        return [(0, 1.0, x0 + d, 40.0 + 0.5 * (i % 120 if i % 120 < 60 else 120 - i % 120))
                for i, d in enumerate(dx)]
    if name == "handheld_zoom":
        c = scenes[0]
        jx, jy = jitter_walk(rng, n, bound=30.0), jitter_walk(rng, n, bound=30.0)
        out = []
        for i in range(n):
            z = 1.0 + 0.15 * math.sin(math.pi * i / max(1, n - 1))
            cx, cy = c.w / 2 + jx[i], c.h / 2 + jy[i]
            out.append((0, z, cx - W / (2 * z), cy - H / (2 * z)))
        return out
    if name == "scene_cuts":
        per = max(1, math.ceil(n / len(scenes)))
        jx = jitter_walk(rng, n, step=0.7, limit=1.5, bound=12.0)
        jy = jitter_walk(rng, n, step=0.7, limit=1.5, bound=12.0)
        return [(min(i // per, len(scenes) - 1), 1.0, 20.0 + jx[i], 20.0 + jy[i])
                for i in range(n)]
    raise ValueError(name)


def build_scenes(name, seed, n):
    idx = CLIPS.index(name)
    rng = random.Random(seed * 100 + idx)
    nrng = np.random.default_rng([seed, idx, 99999])
    if name == "static_noise":
        scenes = [static_noise_scene(rng, nrng)]
    elif name == "slow_pan":
        scenes = [slow_pan_scene(rng, nrng)]
    elif name == "handheld_zoom":
        scenes = [handheld_scene(rng, nrng)]
    elif name == "scene_cuts":
        scenes = cut_scenes(rng, nrng)
    else:
        scenes = counter_scenes(rng, nrng, (n + CHANGE_EVERY - 1) // CHANGE_EVERY)
    return rng, scenes


SIGMA = {"static_noise": 3.0, "slow_pan": 2.0, "handheld_zoom": 2.0, "scene_cuts": 2.0,
         "changing_line": 1.5}


def make_clips(out, seed, n):
    clips = []
    for idx, name in enumerate(CLIPS):
        rng, scenes = build_scenes(name, seed, n)
        plan = plan_clip(name, rng, n, scenes)
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("*.jpg"):
            old.unlink()
        frames = []
        for i, (k, z, x, y) in enumerate(plan):
            nrng = np.random.default_rng([seed, idx, i])
            img = render(scenes[k], z, x, y, nrng, SIGMA[name])
            rel = "%s/%03d.jpg" % (name, i)
            img.save(out / rel, "JPEG", quality=JPEG_QUALITY)
            frames.append({"file": rel, "scene": k,
                           "transform": {"scale": round(z, 5), "x": round(x, 3),
                                         "y": round(y, 3)},
                           "lines": frame_lines(scenes[k], z, x, y)})
        clips.append({"name": name, "fps": FPS, "frames": frames})
        nl = sum(len(f["lines"]) for f in frames)
        nf = sum(1 for f in frames for line in f["lines"] if line["visible"] == "full")
        print("%s: %d frames, %d lines (%d full)" % (name, len(frames), nl, nf))
    truth = {"version": VERSION, "seed": seed, "width": W, "height": H, "clips": clips}
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print("%s: %d clips, %d frames" % (out, len(clips), sum(len(c["frames"]) for c in clips)))


# ---------------------------------------------------------------------------------------------
# Stills for the Rust end-to-end tests


def same_box_pair(c, fname, size, fmt, candidates):
    """Two numbers differing in one digit whose lines (fmt % n) have the same ink extent."""
    for a, b in candidates:
        if c.measure(fmt % a, fname, size) == c.measure(fmt % b, fname, size):
            return a, b
    raise RuntimeError("no pair of counter values with identical ink boxes")


def make_stills(out):
    out.mkdir(parents=True, exist_ok=True)
    images = []

    def save(name, canvas):
        canvas.img.save(out / name, "JPEG", quality=STILLS_QUALITY)
        images.append({"file": name, "width": canvas.img.width, "height": canvas.img.height,
                       "lines": [{"text": ln["text"], "box": [int(v) for v in ln["box"]]}
                                 for ln in sorted(canvas.lines, key=lambda ln: ln["box"][1])]})

    bold, sans = "DejaVuSans-Bold.ttf", "DejaVuSans.ttf"
    # wide.jpg: four lines staggered left to right, so a 480x360 window panning across
    # sees them enter and leave.
    wide = Canvas(gradient(1000, 360, (246, 244, 236), (226, 224, 214), vertical=False), ss=1)
    wide.text("Platform 3", bold, 40, 30, 70, INK)
    wide.text("Bus 42 to Airport", sans, 36, 330, 155, INK)
    wide.text("Next stop: Central", bold, 34, 600, 240, INK)
    wide.text("Gate B17", sans, 38, 150, 320, INK)
    save("wide.jpg", wide)

    # scene_a / scene_b: same background; line 1 at the same place with other words, line 2
    # with the same font, place and ink box but other digits, line 3 elsewhere.
    bg = gradient(480, 360, (238, 240, 244), (214, 220, 228))
    room = Canvas(bg, ss=1)
    ra, rb = same_box_pair(room, sans, 34, "Room %d", [(305, 815), (305, 805), (305, 905),
                                                       (305, 605), (305, 505)])
    a = Canvas(bg.copy(), ss=1)
    a.text("OPEN 24 HOURS", bold, 36, 40, 80, INK)
    a.text("Room %d" % ra, sans, 34, 40, 180, INK)
    a.text("Fresh Coffee", bold, 34, 150, 290, INK)
    save("scene_a.jpg", a)
    b = Canvas(bg.copy(), ss=1)
    b.text("NO PARKING", bold, 36, 40, 80, INK)
    b.text("Room %d" % rb, sans, 34, 40, 180, INK)
    b.text("Keep Left", sans, 36, 220, 300, INK)
    save("scene_b.jpg", b)

    # counter_1 / counter_2: identical but for the last digit of the counter (same ink box).
    bg = gradient(480, 360, (244, 242, 232), (226, 222, 210))
    base = Canvas(bg, ss=1)
    base.text("CITY MUSEUM", bold, 38, 240, 80, INK, align="center")
    base.text("Open 9-17", sans, 32, 40, 290, INK)
    n1, n2 = same_box_pair(base, bold, 36, "Visitors: %d",
                           [(1041, 1047), (1043, 1048), (1042, 1043), (1045, 1046),
                            (1043, 1046), (1042, 1045)])
    for name, n in (("counter_1.jpg", n1), ("counter_2.jpg", n2)):
        v = base.copy()
        v.text("Visitors: %d" % n, bold, 36, 40, 185, INK)
        save(name, v)

    (out / "truth.json").write_text(json.dumps({"version": VERSION, "images": images},
                                               indent=1) + "\n")
    total = sum((out / i["file"]).stat().st_size for i in images)
    print("%s: %d stills, %d bytes" % (out, len(images), total))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("out_dir", type=Path, nargs="?", help="where the clips and truth.json go")
    ap.add_argument("--frames", type=int, default=60, help="frames per clip (default 60)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--stills", type=Path, metavar="DIR",
                    help="write the Rust tests' still images to DIR instead of clips")
    args = ap.parse_args()
    missing = [n for n in FONTS if find_font(n) is None]
    if missing:
        sys.exit("missing fonts %s: apt-get install fonts-dejavu-core fonts-liberation "
                 "(scripts/setup.sh does)" % missing)
    if args.stills:
        make_stills(args.stills)
    if args.out_dir:
        if args.frames < 1:
            sys.exit("--frames must be at least 1")
        make_clips(args.out_dir, args.seed, args.frames)
    if not args.stills and not args.out_dir:
        ap.error("give OUTDIR and/or --stills DIR")


if __name__ == "__main__":
    main()
