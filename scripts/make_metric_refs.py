#!/usr/bin/python3
"""Reference values for tests/test_metrics.c, written to tests/data/metrics_ref.txt.

Run with Debian's python (numpy, scipy, sklearn):
    /usr/bin/python3 scripts/make_metric_refs.py

I-AUROC, P-AUROC, accuracy and mIoU come from sklearn. AUPRO comes from a
direct implementation that shares nothing with src/metrics.c: regions from
scipy.ndimage.label with a 3x3 structure (8-connectivity); for every distinct
score t, FPR and the per-region overlap are counted from scratch; the curve is
cut at the FPR limit by linear interpolation and integrated with np.trapz.

File format (whitespace-separated tokens, one record per line):
    case NAME NMAPS            NMAPS maps follow, each as three lines:
    map W H                      size
    <W*H float32 scores>         row-major, '%.9g' (round-trips float32)
    <W*H 0/1 gt values>
    image <NMAPS image scores>   I-AUROC: label = the map has a gt pixel
    synth NAME NMAPS W H SALT  maps made by the formula in synth_maps() below,
                               which tests/test_metrics.c repeats in C; image
                               scores are the maps' maxima
    expect IAUROC PAUROC AUPRO@0.3 AUPRO@0.05 AUPRO@1   ('nan' = undefined)
    cls NAME NCLS N            then a line of N true and a line of N predicted
                               class ids, then: expect ACC MIOU
"""
import os

import numpy as np
from scipy import ndimage
from sklearn.metrics import accuracy_score, jaccard_score, roc_auc_score

LIMITS = (0.3, 0.05, 1.0)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                   "data", "metrics_ref.txt")
M32 = np.uint64(0xFFFFFFFF)


# ---- reference metrics ----------------------------------------------------

def auroc(labels, scores):
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return float("nan")
    return roc_auc_score(labels, np.asarray(scores, dtype=np.float64))


def aupro(maps, gts, limit):
    normal = np.concatenate([m[g == 0] for m, g in zip(maps, gts)])
    regions = []
    for m, g in zip(maps, gts):
        lab, nreg = ndimage.label(g, structure=np.ones((3, 3), dtype=int))
        regions += [m[lab == r] for r in range(1, nreg + 1)]
    if not regions or normal.size == 0:
        return float("nan")
    thresholds = np.unique(np.concatenate([m.ravel() for m in maps]))[::-1]
    fpr, pro = [0.0], [0.0]
    for t in thresholds:
        fpr.append(np.mean(normal >= t))
        pro.append(np.mean([np.mean(r >= t) for r in regions]))
    fpr, pro = np.array(fpr), np.array(pro)
    k = int(np.searchsorted(fpr, limit, side="left"))
    if fpr[k] == limit:
        xs, ys = fpr[:k + 1], pro[:k + 1]
    else:
        yl = pro[k - 1] + (pro[k] - pro[k - 1]) * (limit - fpr[k - 1]) / \
            (fpr[k] - fpr[k - 1])
        xs, ys = np.append(fpr[:k], limit), np.append(pro[:k], yl)
    return np.trapz(ys, xs) / limit


def aupro_cumsum(maps, gts, limit):
    """Second formulation, as in MVTec AD's evaluation code: per-pixel FPR and
    overlap increments, sorted by descending score, cumulated, one point per
    distinct score. Only used to cross-check aupro()."""
    fp_ch, pro_ch, scores, nreg = [], [], [], 0
    n_ok = sum(int((g == 0).sum()) for g in gts)
    for m, g in zip(maps, gts):
        lab, k = ndimage.label(g, structure=np.ones((3, 3), dtype=int))
        sizes = np.bincount(lab.ravel())
        pro = np.where(lab > 0, 1.0 / sizes[lab], 0.0)
        fp_ch.append(np.where(g == 0, 1.0 / max(n_ok, 1), 0.0).ravel())
        pro_ch.append(pro.ravel())
        scores.append(m.ravel())
        nreg += k
    if nreg == 0 or n_ok == 0:
        return float("nan")
    s = np.concatenate(scores).astype(np.float64)
    order = np.argsort(-s, kind="stable")
    fpr = np.cumsum(np.concatenate(fp_ch)[order])
    pro = np.cumsum(np.concatenate(pro_ch)[order]) / nreg
    keep = np.append(np.diff(s[order]) != 0, True)
    fpr = np.concatenate([[0.0], fpr[keep]])
    pro = np.concatenate([[0.0], pro[keep]])
    inside = fpr < limit
    x, y = fpr[inside], pro[inside]
    k = int(inside.sum())
    if k == fpr.size:  # cumulated FPR ends a rounding error below 1
        return np.trapz(pro, fpr) / limit
    yl = pro[k - 1] + (pro[k] - pro[k - 1]) * (limit - fpr[k - 1]) / \
        (fpr[k] - fpr[k - 1])
    return np.trapz(np.append(y, yl), np.append(x, limit)) / limit


def expect_line(maps, gts, img_scores):
    img_lab = [int(g.any()) for g in gts]
    vals = [auroc(img_lab, img_scores),
            auroc(np.concatenate([g.ravel() for g in gts]),
                  np.concatenate([m.ravel() for m in maps]))]
    vals += [aupro(maps, gts, lim) for lim in LIMITS]
    for lim, v in zip(LIMITS, vals[2:]):
        w = aupro_cumsum(maps, gts, lim)
        assert (np.isnan(v) and np.isnan(w)) or abs(v - w) < 1e-9, (lim, v, w)
    return "expect " + " ".join("%.17g" % v for v in vals) + "\n"


# ---- inputs -----------------------------------------------------------------

def fmix32(x):
    """murmur3's 32-bit finalizer, on uint64 arrays holding 32-bit values."""
    x = np.asarray(x, dtype=np.uint64) & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & M32
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & M32
    x ^= x >> np.uint64(16)
    return x


def h2(a, b):
    """hash(a, b) = fmix32((fmix32(a) + b) mod 2^32)."""
    return fmix32((fmix32(a) + np.asarray(b, dtype=np.uint64)) & M32)


def synth_maps(nmaps, w, h, salt):
    """Deterministic maps, repeated in C (tests/test_metrics.c, synth_map).

    Map m (m < 64): gt = union of 1 + h2(S, 999) % 3 discs, disc d with
    centre (h2(S, 3d) % w, h2(S, 3d+1) % h) and radius 2 + h2(S, 3d+2) % 12,
    where S = salt * 64 + m; maps with m % 4 == 3 have no disc; maps with
    m % 4 == 1 also get the diagonal x - y == 5 for 10 <= x < 40 (one
    8-connected region). Score of pixel i = y * w + x:
    (h2(S + 65536, i) % 512 + (200 if gt else 0) - 256) / 64, exact in float32.
    """
    maps, gts = [], []
    yy, xx = np.mgrid[0:h, 0:w]
    for m in range(nmaps):
        s = salt * 64 + m
        g = np.zeros((h, w), dtype=np.uint8)
        if m % 4 != 3:
            for d in range(1 + int(h2(s, 999)) % 3):
                cx = int(h2(s, 3 * d)) % w
                cy = int(h2(s, 3 * d + 1)) % h
                r = 2 + int(h2(s, 3 * d + 2)) % 12
                g[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 1
        if m % 4 == 1:
            g[(xx - yy == 5) & (xx >= 10) & (xx < 40)] = 1
        noise = (h2(s + 65536, np.arange(w * h)) % 512).astype(np.int64)
        k = noise.reshape(h, w) + 200 * g - 256
        maps.append((k / 64.0).astype(np.float32))
        gts.append(g)
    return maps, gts


def blob_gt(rng, w, h, nblob):
    """Random ellipses plus a diagonal-touching pixel pair (one region
    under 8-connectivity, two under 4)."""
    g = np.zeros((h, w), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(nblob):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        ax, ay = rng.uniform(1, 4), rng.uniform(1, 4)
        g[((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1] = 1
    x, y = rng.integers(0, w - 1), rng.integers(0, h - 1)
    g[y:y + 2, x:x + 2] = 0
    g[y, x] = g[y + 1, x + 1] = 1
    return g


def small_maps(rng, sizes, nblobs):
    maps, gts = [], []
    for (w, h), nb in zip(sizes, nblobs):
        g = blob_gt(rng, w, h, nb) if nb >= 0 else np.zeros((h, w), np.uint8)
        s = np.round(rng.uniform(0, 1, (h, w)) + 0.35 * g, 2)
        maps.append(s.astype(np.float32))
        gts.append(g)
    return maps, gts


def write_case(f, name, maps, gts, img_scores):
    f.write("case %s %d\n" % (name, len(maps)))
    for m, g in zip(maps, gts):
        f.write("map %d %d\n" % (m.shape[1], m.shape[0]))
        f.write(" ".join("%.9g" % v for v in m.ravel()) + "\n")
        f.write(" ".join(str(int(v)) for v in g.ravel()) + "\n")
    f.write("image " + " ".join("%.9g" % v for v in img_scores) + "\n")
    f.write(expect_line(maps, gts, img_scores))


def write_cls(f, name, ncls, t, p):
    f.write("cls %s %d %d\n" % (name, ncls, len(t)))
    f.write(" ".join(map(str, t)) + "\n" + " ".join(map(str, p)) + "\n")
    f.write("expect %.17g %.17g\n" % (
        accuracy_score(t, p), jaccard_score(t, p, average="macro")))


def main():
    rng = np.random.default_rng(20260312)
    sizes = [(17, 13), (9, 11), (21, 7), (13, 13), (5, 19)]
    with open(OUT, "w") as f:
        f.write("# written by scripts/make_metric_refs.py; do not edit\n")
        # Mixed images; map 2 is normal. Image scores rounded to 1 decimal
        # so that they tie.
        maps, gts = small_maps(rng, sizes, [3, 2, -1, 4, 1])
        img = np.round(rng.uniform(0, 1, 5), 1).astype(np.float32)
        write_case(f, "small", maps, gts, img)
        # The same maps scaled into large negative and positive values.
        big = [(m.astype(np.float64) * 1e6 - 5e5).astype(np.float32)
               for m in maps]
        write_case(f, "scaled", big, gts, -img * 1e20)
        # Every image anomalous: I-AUROC undefined.
        maps, gts = small_maps(rng, sizes[:3], [2, 5, 1])
        img = np.round(rng.uniform(0, 1, 3), 2).astype(np.float32)
        write_case(f, "allanomalous", maps, gts, img)
        # No anomalous pixel anywhere: everything but nothing defined.
        maps, gts = small_maps(rng, sizes[3:], [-1, -1])
        write_case(f, "nodefect", maps, gts, [0.5, 0.25])
        # Large case made by the shared formula, about 200k pixels.
        n, w, h, salt = 10, 160, 125, 7
        maps, gts = synth_maps(n, w, h, salt)
        f.write("synth large %d %d %d %d\n" % (n, w, h, salt))
        f.write(expect_line(maps, gts, [m.max() for m in maps]))
        # Classification: class 3 never occurs (left out of the mean).
        t = rng.choice([0, 1, 2, 4], 200, p=[0.5, 0.2, 0.2, 0.1])
        p = np.where(rng.uniform(0, 1, 200) < 0.6, t,
                     rng.choice([0, 1, 2, 4], 200))
        write_cls(f, "skip3", 5, t, p)
        t = rng.integers(0, 3, 57)
        p = np.where(rng.uniform(0, 1, 57) < 0.4, t, rng.integers(0, 3, 57))
        write_cls(f, "three", 3, t, p)


if __name__ == "__main__":
    main()
