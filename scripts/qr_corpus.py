#!/usr/bin/env python3
"""Generates a deterministic corpus of 640x480 grayscale frames for QR decoding tests.

Usage: qr_corpus.py OUT_DIR [--per-category N] [--seed S]

Writes OUT_DIR/<category>_<NN>.png (or .jpg for the jpeg category) and OUT_DIR/manifest.tsv with
the columns file, category, expected (empty for clutter, which holds no QR code at all).

QR symbols come from `qrencode -o - -s N -m 4 TEXT`, so the only Python dependencies are Debian's
python3-pil and python3-numpy (no pip). Each image is seeded from (seed, category, index), so a
smaller --per-category corpus is an exact prefix of the full one: the test and the benchmark see
the same first images.
"""

import argparse
import io
import math
import os
import random
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH, HEIGHT = 640, 480
CATEGORIES = [
    "clean",
    "scale",
    "blur",
    "noise",
    "rotation",
    "perspective",
    "lowcontrast",
    "jpeg",
    "clutter",
]


def payload(rng: random.Random) -> str:
    """Mixes the three payload shapes the till sees: app tokens, bare card numbers, prefixed ids."""
    kind = rng.random()
    if kind < 0.6:
        hex32 = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        member = rng.randint(100001, 999999)
        return f"GMB1.{member}.{rng.randint(1795392000, 1795999999)}.{hex32}"
    if kind < 0.8:
        return str(rng.randint(100001, 999999))
    return f"G{rng.randint(100001, 999999)}"


def qr_image(text: str, module_px: int) -> Image.Image:
    out = subprocess.run(
        ["qrencode", "-o", "-", "-s", str(module_px), "-m", "4", text],
        check=True,
        capture_output=True,
    ).stdout
    img = Image.open(io.BytesIO(out))
    # qrencode's palette PNG may carry a transparency entry; flatten onto white so that the
    # conversion is explicit (and Pillow does not warn on every image).
    rgba = img.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat.alpha_composite(rgba)
    return flat.convert("L")


def fit_module(rng: random.Random, text: str, lo: int, hi: int, max_side: int) -> Image.Image:
    """The largest symbol with module size in [lo, hi] that still fits in max_side pixels."""
    size = rng.randint(lo, hi)
    while True:
        img = qr_image(text, size)
        if img.width <= max_side or size <= 1:
            return img
        size -= 1


def background(rng: random.Random, nrng: np.random.Generator, light: int = 235) -> Image.Image:
    """A light, slightly uneven page: a gentle gradient, as under a till's lamp."""
    gx = np.linspace(0, rng.uniform(-20, 20), WIDTH)[None, :]
    gy = np.linspace(0, rng.uniform(-20, 20), HEIGHT)[:, None]
    arr = np.clip(light + gx + gy, 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "L")


def paste_random(rng: random.Random, bg: Image.Image, sym: Image.Image, mask: Image.Image = None) -> None:
    x = rng.randint(0, max(0, WIDTH - sym.width))
    y = rng.randint(0, max(0, HEIGHT - sym.height))
    bg.paste(sym, (x, y), mask)


def add_noise(nrng: np.random.Generator, img: Image.Image, sigma: float) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    arr = arr + nrng.normal(0.0, sigma, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def perspective_coeffs(src, dst):
    """Coefficients for PIL's PERSPECTIVE transform, which maps output points (dst) to input (src)."""
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return np.linalg.solve(np.array(rows, dtype=np.float64), np.array(rhs, dtype=np.float64)).tolist()


def make_qr_frame(category: str, rng: random.Random, nrng: np.random.Generator, text: str):
    """Returns (image, jpeg_bytes): jpeg_bytes is None for frames to be saved as PNG."""
    bg = background(rng, nrng)
    if category == "clean":
        paste_random(rng, bg, fit_module(rng, text, 4, 8, 440))
        return bg, None
    if category == "scale":
        # Half the images are tiny (2-3 px modules), half nearly fill the frame.
        if rng.random() < 0.5:
            sym = fit_module(rng, text, 2, 3, 440)
        else:
            sym = fit_module(rng, text, 10, 16, 470)
        paste_random(rng, bg, sym)
        return bg, None
    if category == "blur":
        paste_random(rng, bg, fit_module(rng, text, 4, 7, 440))
        return bg.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.0))), None
    if category == "noise":
        paste_random(rng, bg, fit_module(rng, text, 4, 7, 440))
        return add_noise(nrng, bg, rng.uniform(10.0, 30.0)), None
    if category == "rotation":
        sym = fit_module(rng, text, 4, 6, 320)
        angle = rng.uniform(10.0, 45.0) * rng.choice([-1, 1])
        # Rotate white-on-black so that the expanded corners can be masked out, then paste the
        # symbol only where it was: the page keeps its own shade around it.
        rot = sym.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255)
        mask = Image.new("L", sym.size, 255).rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=0)
        paste_random(rng, bg, rot, mask)
        return bg, None
    if category == "perspective":
        sym = fit_module(rng, text, 4, 7, 400)
        w, h = sym.size
        k = rng.uniform(0.08, 0.2) * w  # keystone: one edge shorter than the other
        j = rng.uniform(-0.05, 0.05) * h
        side = rng.choice(["top", "bottom", "left", "right"])
        if side == "top":
            dst = [(k, j), (w - k, -j), (w, h), (0, h)]
        elif side == "bottom":
            dst = [(0, 0), (w, 0), (w - k, h + j), (k, h - j)]
        elif side == "left":
            dst = [(j, k), (w, 0), (w, h), (-j, h - k)]
        else:
            dst = [(0, 0), (w + j, k), (w - j, h - k), (0, h)]
        src = [(0, 0), (w, 0), (w, h), (0, h)]
        coeffs = perspective_coeffs(src, dst)
        warped = sym.transform((w, h), Image.PERSPECTIVE, coeffs, Image.BICUBIC, fillcolor=255)
        mask = Image.new("L", (w, h), 255).transform((w, h), Image.PERSPECTIVE, coeffs, Image.BICUBIC, fillcolor=0)
        paste_random(rng, bg, warped, mask)
        return bg, None
    if category == "lowcontrast":
        sym = fit_module(rng, text, 4, 7, 440)
        dark = rng.randint(80, 120)
        light = dark + rng.randint(35, 60)
        arr = np.asarray(sym, dtype=np.float64) / 255.0
        sym = Image.fromarray((dark + arr * (light - dark)).astype(np.uint8), "L")
        page = Image.new("L", (WIDTH, HEIGHT), light)
        paste_random(rng, page, sym)
        return add_noise(nrng, page, 2.0), None
    if category == "jpeg":
        paste_random(rng, bg, fit_module(rng, text, 3, 6, 440))
        bg = add_noise(nrng, bg, 4.0)
        buf = io.BytesIO()
        bg.save(buf, "JPEG", quality=rng.randint(20, 40))
        return Image.open(io.BytesIO(buf.getvalue())), buf.getvalue()
    raise ValueError(category)


def fake_finder(draw: ImageDraw.ImageDraw, x: int, y: int, m: int) -> None:
    """Concentric squares with the 1:1:3:1:1 ratio of a QR finder pattern, to tempt the detector."""
    draw.rectangle([x, y, x + 7 * m - 1, y + 7 * m - 1], fill=0)
    draw.rectangle([x + m, y + m, x + 6 * m - 1, y + 6 * m - 1], fill=255)
    draw.rectangle([x + 2 * m, y + 2 * m, x + 5 * m - 1, y + 5 * m - 1], fill=0)


def make_clutter(rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    bg = background(rng, nrng)
    draw = ImageDraw.Draw(bg)
    font = ImageFont.load_default()
    for _ in range(rng.randint(10, 40)):
        shape = rng.random()
        x0, y0 = rng.randint(0, WIDTH), rng.randint(0, HEIGHT)
        x1, y1 = x0 + rng.randint(5, 200), y0 + rng.randint(5, 200)
        shade = rng.randint(0, 255)
        if shape < 0.3:
            draw.rectangle([x0, y0, x1, y1], fill=shade)
        elif shape < 0.5:
            draw.ellipse([x0, y0, x1, y1], outline=shade, width=rng.randint(1, 6))
        elif shape < 0.7:
            draw.line([x0, y0, x1, y1], fill=shade, width=rng.randint(1, 8))
        else:
            words = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .") for _ in range(rng.randint(4, 30)))
            draw.text((x0, y0), words, fill=shade, font=font)
    if rng.random() < 0.6:
        # Three finder-like marks at the corners of a square full of random modules: a QR lookalike
        # whose data cannot pass error correction, the worst case for a false read.
        m = rng.randint(3, 6)
        n = 25
        ox, oy = rng.randint(0, WIDTH - n * m - 1), rng.randint(0, HEIGHT - n * m - 1)
        cells = nrng.random((n, n)) < 0.5
        for cy in range(n):
            for cx in range(n):
                if cells[cy, cx]:
                    draw.rectangle([ox + cx * m, oy + cy * m, ox + cx * m + m - 1, oy + cy * m + m - 1], fill=0)
        for fx, fy in [(0, 0), (n - 7, 0), (0, n - 7)]:
            draw.rectangle([ox + fx * m - m, oy + fy * m - m, ox + (fx + 8) * m, oy + (fy + 8) * m], fill=255)
            fake_finder(draw, ox + fx * m, oy + fy * m, m)
    if rng.random() < 0.5:
        bg = bg.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.5)))
    return add_noise(nrng, bg, rng.uniform(0.0, 25.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--per-category", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20251123)
    args = parser.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    rows = []
    for ci, category in enumerate(CATEGORIES):
        for i in range(args.per_category):
            seed = args.seed * 1000003 + ci * 1009 + i
            rng = random.Random(seed)
            nrng = np.random.default_rng(seed)
            if category == "clutter":
                img, jpeg, expected = make_clutter(rng, nrng), None, ""
            else:
                expected = payload(rng)
                img, jpeg = make_qr_frame(category, rng, nrng, expected)
            assert img.size == (WIDTH, HEIGHT) and img.mode == "L", (category, i, img.size, img.mode)
            name = f"{category}_{i:02d}"
            if jpeg is not None:
                # Written as encoded, not re-encoded: the JPEG artefacts are what is being tested.
                name += ".jpg"
                with open(os.path.join(args.out_dir, name), "wb") as f:
                    f.write(jpeg)
            else:
                name += ".png"
                img.save(os.path.join(args.out_dir, name), "PNG")
            rows.append((name, category, expected))

    with open(os.path.join(args.out_dir, "manifest.tsv"), "w", encoding="utf-8") as f:
        f.write("file\tcategory\texpected\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
    print(f"wrote {len(rows)} images to {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
