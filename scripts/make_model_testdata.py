"""Writes tests/data/model/: a tiny dataset in MVTec layout (48 x 40 gray
PNGs: a shaded texture; defects are dark discs ("hole") and bright lines
("line")), its priors, and a synthetic set with manifest.csv in the layout
of `uniadc synth`, for tests/cli_model.sh. Run with /usr/bin/python3."""
import os

import numpy as np
from PIL import Image

W, H = 48, 40
root = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "model")
rng = np.random.default_rng(5)


def normal():
    y, x = np.mgrid[0:H, 0:W]
    img = 0.5 + 0.1 * y / H + 0.05 * np.sin(0.4 * x + rng.uniform(0, 6))
    return img + 0.02 * rng.standard_normal((H, W))


def defect(img, cls):
    y, x = np.mgrid[0:H, 0:W]
    cx, cy = rng.uniform(10, W - 10), rng.uniform(10, H - 10)
    if cls == "hole":
        m = (x - cx) ** 2 + (y - cy) ** 2 <= rng.uniform(3, 5) ** 2
        img[m] = 0.1
    else:
        th = rng.uniform(0, np.pi)
        along = (x - cx) * np.cos(th) + (y - cy) * np.sin(th)
        across = -(x - cx) * np.sin(th) + (y - cy) * np.cos(th)
        m = (np.abs(along) <= 9) & (np.abs(across) <= 1.0)
        img[m] = 0.95
    return img, m


def save(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.clip(arr * 255 + 0.5, 0, 255).astype(np.uint8)).save(path)


for i in range(4):
    save(f"{root}/ds/train/good/{i:03d}.png", normal())
    save(f"{root}/ds/test/good/{i:03d}.png", normal())
for cls in ("hole", "line"):
    for i in range(4):
        img, m = defect(normal(), cls)
        save(f"{root}/ds/test/{cls}/{i:03d}.png", img)
        save(f"{root}/ds/ground_truth/{cls}/{i:03d}_mask.png", m.astype(float))
with open(f"{root}/ds/priors.yaml", "w") as f:
    f.write("object: test tile\ncategories:\n"
            "  - name: hole\n    description: [dark hole]\n"
            "  - name: line\n    description: [bright line]\n")
rows = ["image,mask,category,method,score,seed,source_image"]
for cls in ("hole", "line"):
    for i in range(6):
        img, m = defect(normal(), cls)
        save(f"{root}/synth/images/{cls}_{i:03d}.png", img)
        save(f"{root}/synth/masks/{cls}_{i:03d}_mask.png", m.astype(float))
        rows.append(f"images/{cls}_{i:03d}.png,masks/{cls}_{i:03d}_mask.png,"
                    f"{cls},test,1.0,{i},train/good/000.png")
with open(f"{root}/synth/manifest.csv", "w") as f:
    f.write("\n".join(rows) + "\n")
