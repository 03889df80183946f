"""Generates the test frames in this folder (frame.jpg, dark.jpg, bright.jpg).

Throwaway generator, kept so the frames can be remade or varied. Pillow is not a project
dependency; run it from a scratch virtual environment:

    python3 -m venv /tmp/frames-venv && /tmp/frames-venv/bin/pip install pillow
    /tmp/frames-venv/bin/python examples/frames/make_frames.py

It uses DejaVu Sans Bold (Debian: `apt-get install -y fonts-dejavu-core`) for the text that the
OCR pipelines read, and falls back to Pillow's built-in font (much smaller) if it is missing.
The output is deterministic: no randomness, fixed JPEG quality.

- frame.jpg: 640x480, a soft photo-like scene (sky gradient, sun, hills, buildings, a car) with a
  light panel holding three lines of large dark text: "HELLO WORLD 2024", "yolo_ocr frame 17",
  "ABC-123".
- dark.jpg / bright.jpg: 640x480, near-black / near-white with a faint gradient (mean
  brightness about 10 and 245), for brightness checks.
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

W, H = 640, 480
OUT = Path(__file__).resolve().parent
TEXT_LINES = ["HELLO WORLD 2024", "yolo_ocr frame 17", "ABC-123"]
FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
]
QUALITY = 85


def font(size):
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    print("warning: DejaVu Sans Bold not found; using Pillow's default font")
    return ImageFont.load_default(size)


def lerp(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def scene():
    img = Image.new("RGB", (W, H))
    px = img.load()
    sky_top, sky_bottom = (70, 120, 190), (190, 215, 235)
    ground_top, ground_bottom = (90, 140, 70), (50, 90, 40)
    horizon = 200
    for y in range(H):
        if y < horizon:
            row = lerp(sky_top, sky_bottom, y / horizon)
        else:
            row = lerp(ground_top, ground_bottom, (y - horizon) / (H - horizon))
        for x in range(W):
            # A slight left-to-right falloff, like a lens vignette.
            k = 1.0 - 0.12 * abs(x - W / 2) / (W / 2)
            px[x, y] = tuple(round(c * k) for c in row)

    d = ImageDraw.Draw(img)
    d.ellipse((500, 30, 580, 110), fill=(255, 225, 120))  # sun
    d.polygon([(0, 210), (120, 140), (260, 205), (380, 150), (520, 200), (640, 170), (640, 230), (0, 230)],
              fill=(70, 110, 80))  # hills
    for x0, top, colour in [(40, 90, (120, 110, 105)), (110, 60, (150, 140, 130)), (180, 110, (100, 95, 110))]:
        d.rectangle((x0, top, x0 + 60, 215), fill=colour)  # buildings
        for wy in range(top + 10, 205, 22):
            for wx in (x0 + 10, x0 + 35):
                d.rectangle((wx, wy, wx + 14, wy + 12), fill=(230, 220, 150))
    d.rounded_rectangle((400, 180, 540, 225), radius=10, fill=(180, 40, 40))  # car body
    d.rectangle((425, 165, 505, 185), fill=(160, 35, 35))
    for cx in (430, 510):
        d.ellipse((cx - 13, 213, cx + 13, 239), fill=(25, 25, 25))
    # Soften the shapes so the scene looks photographed rather than drawn.
    return img.filter(ImageFilter.GaussianBlur(1.5))


def frame():
    img = scene()
    d = ImageDraw.Draw(img)
    panel = (30, 255, 610, 465)
    d.rounded_rectangle(panel, radius=14, fill=(240, 238, 230), outline=(200, 195, 185), width=2)
    f = font(44)
    y = panel[1] + 14
    for line in TEXT_LINES:
        left, top, right, bottom = d.textbbox((0, 0), line, font=f)
        x = (W - (right - left)) // 2 - left
        d.text((x, y - top), line, font=f, fill=(20, 20, 25))
        y += (bottom - top) + 26
    return img


def flat(lo, hi):
    img = Image.new("L", (W, H))
    px = img.load()
    for y in range(H):
        for x in range(W):
            px[x, y] = round(lo + (hi - lo) * (x + y) / (W + H - 2))
    return img.convert("RGB")


def main():
    outputs = {"frame.jpg": frame(), "dark.jpg": flat(4, 16), "bright.jpg": flat(239, 251)}
    for name, img in outputs.items():
        path = OUT / name
        img.save(path, "JPEG", quality=QUALITY, optimize=True)
        print(f"{path}: {img.size[0]}x{img.size[1]}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
