#!/usr/bin/env python3
"""Make a tiny demo dataset of a product on a plain background (a round,
turned metal cap with a printed label on a dark green mat) for the README's
synthesis and foreground figures. Docs only: nothing in the build or the
tests needs it.

usage: scripts/synth_demo.py OUT_DIR   (then run `uniadc synth` on it)
"""
import math
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFilter

CATS = {
    "stain": "brown oil stain",
    "scratch": "bright scratch",
    "hole": "hole",
    "misprint": "misprint",
}


def product(seed, size=256):
    rnd = random.Random(seed)
    im = Image.new("RGB", (size, size), (38, 70, 52))
    px = im.load()
    for y in range(size):
        for x in range(size):
            n = rnd.randint(-4, 4)
            r, g, b = px[x, y]
            px[x, y] = (r + n, g + n, b + n)
    d = ImageDraw.Draw(im)
    cx = size / 2 + rnd.uniform(-12, 12)
    cy = size / 2 + rnd.uniform(-12, 12)
    rad = size * rnd.uniform(0.30, 0.34)
    for k in range(40, 0, -1):  # turned metal: concentric rings
        rr = rad * k / 40
        v = int(150 + 60 * math.sin(k * 0.9) * (k / 40) + 40 * (1 - k / 40))
        d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=(v, v, v + 6))
    d.text((cx - 22, cy - 6), "UAD-7", fill=(30, 30, 120))
    return im.filter(ImageFilter.GaussianBlur(0.6))


def main():
    out = sys.argv[1]
    for sub in ["train/good"] + ["test/" + c for c in CATS] + \
               ["ground_truth/" + c for c in CATS]:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for i in range(4):
        product(i).save(os.path.join(out, "train/good/%03d.png" % i))
    for k, c in enumerate(CATS):  # one placeholder test image per category
        product(10 + k).save(os.path.join(out, "test", c, "000.png"))
        m = Image.new("L", (256, 256), 0)
        ImageDraw.Draw(m).ellipse([120, 120, 136, 136], fill=255)
        m.save(os.path.join(out, "ground_truth", c, "000_mask.png"))
    with open(os.path.join(out, "priors.yaml"), "w") as f:
        f.write("object: metal cap\ncategories:\n")
        for c, d in CATS.items():
            f.write("  - name: %s\n    description: [%s]\n" % (c, d))


if __name__ == "__main__":
    main()
