#!/usr/bin/env python3
"""Generate the OCR benchmark corpus: JPEG frames plus truth.json.

    bench/.venv/bin/python bench/make_corpus.py bench/corpus

Deterministic: a fixed seed, fixed fonts (Debian fonts-dejavu-core, fonts-liberation) and pinned
Pillow/numpy (bench/requirements.txt) give byte-identical frames. Frame 0 is a byte copy of
examples/frames/frame.jpg when that file exists.

Backgrounds: plain (flat or gradient), procedural "photo-like" scenes (gradients, shapes, noise,
blur) and, when the Debian package darknet's test photos are found (bench/setup_venv.sh extracts
them to bench/.cache/darknet without installing the package), crops of those photos. truth.json
records which sources were used ("photos": true/false) so two corpora can be told apart.

truth.json:
    {"version": 1, "seed": S, "photos": bool,
     "frames": [{"file": "f000.jpg", "width": W, "height": H, "background": "...",
                 "lines": [{"text": "...", "box": [x1, y1, x2, y2], "font": "...",
                            "size": px, "fg": [r, g, b], "style": "direct|panel|outline"}]}]}
box is the ink bounding box of the rendered line in frame pixels.
"""

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SEED = 20241117
VERSION = 1
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
EXAMPLE_FRAME = REPO / "examples" / "frames" / "frame.jpg"

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation")]
FONTS = [
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationSerif-Bold.ttf",
    "LiberationMono-Regular.ttf",
    "LiberationSansNarrow-Bold.ttf",
]

BOLD_FONTS = ["DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf"]

PHOTO_DIRS = [BENCH / ".cache" / "darknet", Path("/usr/share/darknet/data")]
# darknet's test photos in which RapidOCR finds no text (kite.jpg has a stray "V").
PHOTOS = ["dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "person.jpg"]

LINES = [
    "Exit 12B", "Speed limit 50", "OPEN 24 HOURS", "Gate B17", "Total: $18.40",
    "Lot 2024-117", "Room 305", "NO PARKING", "Order #58213", "Made in Canada",
    "Best before 03/2026", "Main Street", "Pharmacy", "Ticket A-0931", "Batch 7Q-552",
    "Caution: Wet Floor", "Route 66", "Price 4.99", "Call 555-0199", "Check-in 14:30",
    "SN 88213-KX", "Platform 3", "Welcome Home", "Zone C", "Level 2",
    "Bus 42 to Airport", "Aisle 7", "Model XR-200", "Flight BA 117", "Departures",
    "Temp 21.5 C", "Station North", "SALE 50% OFF", "Parking P2", "Library",
    "Fresh Coffee", "Push to open", "Car Wash", "Dock 14", "Lane 3 closed",
    "Track 12", "ABC-123", "Floor 6", "Receipt 00412", "Bakery & Cafe",
    "Next stop: Central", "Hotel Plaza", "Box 17 of 40", "Mon-Fri 9-17", "Size M",
    "Vol. 3, No. 2", "Part No. 55-A1", "Keep Left", "Elm Ave", "Visitor Parking",
]

N_TEXT_FRAMES = 34  # plus frame 0 (examples/frames/frame.jpg) and the no-text frames
N_EMPTY_FRAMES = 5
EMPTY_SEED_OFFSET = 5


def find_font(name):
    for d in FONT_DIRS:
        p = d / name
        if p.exists():
            return p
    return None


def find_photos():
    for d in PHOTO_DIRS:
        found = [d / n for n in PHOTOS if (d / n).exists()]
        if len(found) == len(PHOTOS):
            return found
    return []


def luminance(c):
    r, g, b = c
    return 0.299 * r + 0.587 * g + 0.114 * b


def dark_colour(rng):
    return tuple(rng.randint(0, 60) for _ in range(3))


def light_colour(rng):
    return tuple(rng.randint(215, 255) for _ in range(3))


def gradient(w, h, c0, c1, vertical=True):
    t = np.linspace(0.0, 1.0, h if vertical else w, dtype=np.float32)
    a, b = np.array(c0, np.float32), np.array(c1, np.float32)
    ramp = a[None, :] + (b - a)[None, :] * t[:, None]
    if vertical:
        arr = np.broadcast_to(ramp[:, None, :], (h, w, 3))
    else:
        arr = np.broadcast_to(ramp[None, :, :], (h, w, 3))
    return Image.fromarray(np.ascontiguousarray(arr).round().astype(np.uint8), "RGB")


def plain_background(rng, w, h, light):
    if light:
        c0 = tuple(rng.randint(200, 250) for _ in range(3))
        c1 = tuple(min(255, v + rng.randint(-25, 5)) for v in c0)
    else:
        c0 = tuple(rng.randint(10, 70) for _ in range(3))
        c1 = tuple(max(0, v + rng.randint(-10, 30)) for v in c0)
    if rng.random() < 0.3:
        return Image.new("RGB", (w, h), c0)
    return gradient(w, h, c0, c1, vertical=rng.random() < 0.5)


def procedural_scene(rng, nrng, w, h):
    """Sky/ground gradients, hills, blocks, discs, noise and blur: busy but textless."""
    horizon = int(h * rng.uniform(0.3, 0.6))
    sky = gradient(w, horizon, tuple(rng.randint(40, 120) for _ in range(3)),
                   tuple(rng.randint(150, 230) for _ in range(3)))
    ground = gradient(w, h - horizon, tuple(rng.randint(60, 140) for _ in range(3)),
                      tuple(rng.randint(20, 80) for _ in range(3)))
    img = Image.new("RGB", (w, h))
    img.paste(sky, (0, 0))
    img.paste(ground, (0, horizon))
    d = ImageDraw.Draw(img)
    pts = [(0, horizon + 10)]
    for i in range(7):
        pts.append((int(w * (i + 1) / 7), horizon - rng.randint(0, h // 5)))
    pts += [(w, horizon + 10)]
    d.polygon(pts, fill=tuple(rng.randint(40, 110) for _ in range(3)))
    for _ in range(rng.randint(4, 9)):
        x0 = rng.randint(0, w - 40)
        y0 = rng.randint(0, h - 40)
        sw, sh = rng.randint(30, w // 4), rng.randint(30, h // 3)
        col = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            d.ellipse((x0, y0, x0 + sw, y0 + sh), fill=col)
        else:
            d.rectangle((x0, y0, x0 + sw, y0 + sh), fill=col)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 3.0)))
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + nrng.normal(0.0, rng.uniform(3.0, 9.0), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")


def photo_background(rng, path, w, h):
    img = Image.open(path).convert("RGB")
    scale = max(w / img.width, h / img.height) * rng.uniform(1.0, 1.3)
    img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                     Image.BILINEAR)
    x0 = rng.randint(0, img.width - w)
    y0 = rng.randint(0, img.height - h)
    return img.crop((x0, y0, x0 + w, y0 + h))


def region_mean(img, box):
    x1, y1, x2, y2 = (int(v) for v in box)
    arr = np.asarray(img.crop((max(0, x1), max(0, y1), x2, y2)), dtype=np.float32)
    return arr.reshape(-1, 3).mean(axis=0)


def word_positions(font, size, text):
    """x offsets of the words of a line. Words are drawn one by one, a space of at least
    0.4 em apart: the PP-OCR recogniser drops the narrow spaces of some fonts ("Dock14",
    "Total:$18.40"), which would make the truth ambiguous."""
    space = max(font.getlength(" "), 0.4 * size)
    xs, x = [], 0.0
    for word in text.split(" "):
        xs.append((round(x), word))
        x += font.getlength(word) + space
    return xs


def text_bbox(font, size, text):
    boxes = [(x + l, t, x + r, b) for x, word in word_positions(font, size, text)
             for l, t, r, b in [font.getbbox(word)]]
    return (min(v[0] for v in boxes), min(v[1] for v in boxes),
            max(v[2] for v in boxes), max(v[3] for v in boxes))


def draw_text(d, origin, text, font, size, **kw):
    ox, oy = origin
    for x, word in word_positions(font, size, text):
        d.text((ox + x, oy), word, font=font, **kw)


def layout_lines(rng, texts, fonts, w, h, size_range, min_sizes):
    """Pick a size per line (at least its min_sizes entry) and place each line in its own
    vertical band, no overlap."""
    margin = max(16, w // 40)
    for _attempt in range(50):
        items = []
        for text, fpath, lo in zip(texts, fonts, min_sizes):
            size = rng.randint(max(lo, size_range[0]), max(lo, size_range[1]))
            while True:
                f = ImageFont.truetype(str(fpath), size)
                l, t, r, b = text_bbox(f, size, text)
                if r - l <= w - 2 * margin - 2 * size or size <= max(lo, size_range[0]):
                    break
                size -= 2
            items.append((text, fpath, size, f, (l, t, r, b)))
        heights = [it[4][3] - it[4][1] for it in items]
        gaps = [max(18, int(0.9 * hh)) for hh in heights]
        need = sum(heights) + sum(gaps) + 2 * margin
        if need <= h and all(it[4][2] - it[4][0] <= w - 2 * margin - 2 * it[2] for it in items):
            break
        size_range = (size_range[0], max(size_range[0], size_range[1] - 6))
    else:
        raise RuntimeError("cannot lay out %r" % (texts,))
    slack = h - need
    y = margin + rng.randint(0, slack // 2)
    placed = []
    for (text, fpath, size, f, (l, t, r, b)), gap in zip(items, gaps):
        tw, th = r - l, b - t
        pad = size  # room for a panel around the text
        x = rng.randint(margin + pad // 2, max(margin + pad // 2, w - margin - pad // 2 - tw))
        placed.append({"text": text, "font": fpath, "size": size, "ft": f,
                       "origin": (x - l, y - t), "box": [x, y, x + tw, y + th]})
        extra = rng.randint(0, max(0, slack // (2 * len(items))))
        y += th + gap + extra
    return placed


def draw_frame(rng, nrng, w, h, kind, photos, n_lines):
    if kind == "plain-light":
        img = plain_background(rng, w, h, light=True)
    elif kind == "plain-dark":
        img = plain_background(rng, w, h, light=False)
    elif kind == "scene":
        img = procedural_scene(rng, nrng, w, h)
    else:  # "photo:NAME"
        name = kind.split(":", 1)[1]
        img = photo_background(rng, next(p for p in photos if p.name == name), w, h)
    if n_lines == 0:
        return img, []

    texts = rng.sample(LINES, n_lines)
    frame_font = rng.choice(FONTS)
    fonts = [frame_font if rng.random() < 0.6 else rng.choice(FONTS) for _ in texts]
    busy = kind.startswith(("scene", "photo"))
    styles = []
    for i, name in enumerate(fonts):
        style = "direct"
        if busy:
            style = "panel" if rng.random() < 0.65 else "outline"
        if style == "outline":
            # Caption style: a bold face with a contrasting stroke.
            fonts[i] = BOLD_FONTS[FONTS.index(name) % len(BOLD_FONTS)]
        styles.append(style)
    # 20-64 px; at least 28 px on 1280x720 (the tuned detector sees it at half size) and
    # 32 px for outlined captions (a thick stroke on small text eats the spaces).
    size_range = (20, 64) if w <= 640 else (28, 64)
    min_sizes = [32 if s == "outline" else size_range[0] for s in styles]
    placed = layout_lines(rng, texts, [find_font(n) for n in fonts], w, h, size_range,
                          min_sizes)

    d = ImageDraw.Draw(img)
    lines = []
    for p, style in zip(placed, styles):
        x1, y1, x2, y2 = p["box"]
        if style == "panel":
            pad_x, pad_y = int(p["size"] * 0.45), int(p["size"] * 0.35)
            light_panel = rng.random() < 0.5
            panel = light_colour(rng) if light_panel else dark_colour(rng)
            fg = dark_colour(rng) if light_panel else light_colour(rng)
            d.rounded_rectangle((x1 - pad_x, y1 - pad_y, x2 + pad_x, y2 + pad_y),
                                radius=max(4, pad_y), fill=panel)
            draw_text(d, p["origin"], p["text"], p["ft"], p["size"], fill=fg)
        elif style == "outline":
            fg = light_colour(rng) if rng.random() < 0.6 else dark_colour(rng)
            stroke = (0, 0, 0) if luminance(fg) > 128 else (255, 255, 255)
            sw = max(2, round(p["size"] / 14))
            draw_text(d, p["origin"], p["text"], p["ft"], p["size"], fill=fg, stroke_width=sw,
                      stroke_fill=stroke)
            x1, y1, x2, y2 = x1 - sw, y1 - sw, x2 + sw, y2 + sw
        else:
            bg = region_mean(img, p["box"])
            fg = dark_colour(rng) if luminance(bg) > 128 else light_colour(rng)
            draw_text(d, p["origin"], p["text"], p["ft"], p["size"], fill=fg)
        lines.append({"text": p["text"], "box": [x1, y1, x2, y2], "font": p["font"].name,
                      "size": p["size"], "fg": list(fg), "style": style})
    return img, lines


def frame0_truth():
    """Truth for examples/frames/frame.jpg, following examples/frames/make_frames.py."""
    fpath = find_font("DejaVuSans-Bold.ttf")
    if fpath is None:
        return None
    f = ImageFont.truetype(str(fpath), 44)
    lines = []
    y = 255 + 14
    for text in ["HELLO WORLD 2024", "yolo_ocr frame 17", "ABC-123"]:
        l, t, r, b = f.getbbox(text)
        x = (640 - (r - l)) // 2 - l
        lines.append({"text": text, "box": [x + l, y, x + r, y + (b - t)],
                      "font": fpath.name, "size": 44, "fg": [20, 20, 25], "style": "panel"})
        y += (b - t) + 26
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--no-photos", action="store_true",
                    help="procedural backgrounds only, even when darknet's photos are present")
    ap.add_argument("--text-frames", type=int, default=N_TEXT_FRAMES,
                    help="frames with text besides frame 0 (more for calibration sets)")
    ap.add_argument("--empty-frames", type=int, default=N_EMPTY_FRAMES, help="frames without text")
    args = ap.parse_args()

    missing = [n for n in FONTS if find_font(n) is None]
    if missing:
        sys.exit("missing fonts %s: apt-get install fonts-dejavu-core fonts-dejavu-extra "
                 "fonts-liberation (scripts/setup.sh does)" % missing)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("f*.jpg"):
        old.unlink()

    rng = random.Random(args.seed)
    nrng = np.random.default_rng(args.seed)
    photos = [] if args.no_photos else find_photos()

    frames = []
    # Frame 0: the repository's example frame, byte for byte.
    if EXAMPLE_FRAME.exists() and frame0_truth() is not None:
        shutil.copyfile(EXAMPLE_FRAME, out / "f000.jpg")
        frames.append({"file": "f000.jpg", "width": 640, "height": 480,
                       "background": "example", "lines": frame0_truth()})

    # A quarter each: light plain, dark plain, procedural scene, photo (a procedural scene when
    # the photos are missing).
    kinds = ["plain-light", "plain-dark", "scene", "photo"]
    photo_turn = 0
    plan_rng = random.Random(args.seed + 1)
    plan = []
    for i in range(args.text_frames):
        # Sizes alternate, shifted each round of kinds, so each kind gets both sizes.
        kind = kinds[i % len(kinds)]
        if kind == "photo":
            kind = "photo:" + photos[photo_turn % len(photos)].name if photos else "scene"
            photo_turn += 1
        plan.append((kind, (i + i // len(kinds)) % 2, plan_rng.randint(1, 4)))
    # Frames without text come from their own random streams so that they can be tuned
    # (EMPTY_SEED_OFFSET) without touching the text frames: busy backgrounds sometimes make
    # RapidOCR report a junk line, and these frames must give none in either mode.
    empty_kinds = ["plain-light", "plain-dark", "scene", "scene"]
    empty_kinds.append("photo:person.jpg" if photos else "plain-light")
    for i in range(args.empty_frames):
        plan.append((empty_kinds[i % len(empty_kinds)], i % 2, 0))

    erng = random.Random(args.seed + EMPTY_SEED_OFFSET)
    enrng = np.random.default_rng(args.seed + EMPTY_SEED_OFFSET)
    for kind, big, n_lines in plan:
        w, h = (1280, 720) if big else (640, 480)
        if n_lines:
            img, lines = draw_frame(rng, nrng, w, h, kind, photos, n_lines)
        else:
            img, lines = draw_frame(erng, enrng, w, h, kind, photos, 0)
        name = "f%03d.jpg" % len(frames)
        img.save(out / name, "JPEG", quality=(rng if n_lines else erng).choice([80, 85, 90, 95]))
        frames.append({"file": name, "width": w, "height": h, "background": kind,
                       "lines": lines})

    truth = {"version": VERSION, "seed": args.seed, "photos": bool(photos), "frames": frames}
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    n_lines = sum(len(f["lines"]) for f in frames)
    n_empty = sum(1 for f in frames if not f["lines"])
    print("%s: %d frames (%d without text), %d text lines, photos=%s"
          % (out, len(frames), n_empty, n_lines, bool(photos)))


if __name__ == "__main__":
    main()
