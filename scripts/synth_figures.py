#!/usr/bin/env python3
"""Assemble the README's synthesis figures from `uniadc synth` outputs.
Docs only: nothing in the build or the tests needs it.

usage: scripts/synth_figures.py MTD_OUT DEMO_OUT DEMO_DATA DOCS_DIR
  MTD_OUT   output of `uniadc synth` on MTD (zero-shot)
  DEMO_OUT  output of `uniadc synth` on scripts/synth_demo.py's dataset
"""
import csv
import os
import sys

from PIL import Image, ImageDraw, ImageFilter

T = 112  # thumbnail side


def outlined(img_path, mask_path):
    """Result with the mask's outline in red, as a T x T thumbnail."""
    im = Image.open(img_path).convert("RGB").resize((T, T), Image.BILINEAR)
    m = Image.open(mask_path).convert("L").resize((T, T), Image.NEAREST)
    # a 1-2 px ring just outside the mask, so the defect stays visible
    outer = m.filter(ImageFilter.MaxFilter(7)).point(lambda v: 255 if v else 0)
    inner = m.filter(ImageFilter.MaxFilter(3)).point(lambda v: 255 if v else 0)
    ring = Image.composite(Image.new("L", (T, T), 0), outer, inner)
    im.paste((230, 30, 30), mask=ring)
    return im


def rows_by_category(out_dir):
    rows = {}
    with open(os.path.join(out_dir, "manifest.csv")) as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["category"], []).append(r)
    return rows


def mtd_figure(out_dir, path, per=4, label_w=84):
    rows = rows_by_category(out_dir)
    cats = list(rows)
    fig = Image.new("RGB", (label_w + per * (T + 2), len(cats) * (T + 2)),
                    (255, 255, 255))
    d = ImageDraw.Draw(fig)
    for i, c in enumerate(cats):
        d.text((4, i * (T + 2) + T // 2 - 6), c, fill=(0, 0, 0))
        for k, r in enumerate(rows[c][:per]):
            th = outlined(os.path.join(out_dir, r["image"]),
                          os.path.join(out_dir, r["mask"]))
            fig.paste(th, (label_w + k * (T + 2), i * (T + 2)))
    fig.quantize(128).save(path, optimize=True)


def demo_figure(out_dir, data_dir, path):
    rows = rows_by_category(out_dir)
    cells = [Image.open(os.path.join(data_dir, "train/good/000.png"))
             .convert("RGB").resize((T, T)),
             Image.open(os.path.join(out_dir, "foreground/000.png"))
             .convert("RGB").resize((T, T))]
    for c, rs in rows.items():
        cells.append(outlined(os.path.join(out_dir, rs[0]["image"]),
                              os.path.join(out_dir, rs[0]["mask"])))
    fig = Image.new("RGB", (len(cells) * (T + 2), T), (255, 255, 255))
    for k, im in enumerate(cells):
        fig.paste(im, (k * (T + 2), 0))
    fig.quantize(128).save(path, optimize=True)


if __name__ == "__main__":
    mtd_out, demo_out, demo_data, docs = sys.argv[1:5]
    os.makedirs(docs, exist_ok=True)
    mtd_figure(mtd_out, os.path.join(docs, "synth_mtd.png"))
    demo_figure(demo_out, demo_data, os.path.join(docs, "synth_product.png"))
